//! A minimal PostgreSQL client that shows the messages as they arrive, for
//! the tests that look at bytes drivers hide (ParameterStatus,
//! BackendKeyData) or send bytes no driver would.

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
}

pub type Msg = (u8, Bytes);

impl RawClient {
    /// Connects and authenticates with SCRAM; returns the client and the
    /// messages after authentication up to the first ReadyForQuery.
    pub async fn connect(
        addr: std::net::SocketAddr,
        params: &[(&str, &str)],
        password: &str,
    ) -> Result<(RawClient, Vec<Msg>), Msg> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut c = RawClient {
            stream,
            buf: BytesMut::new(),
        };
        let mut out = BytesMut::new();
        frontend::startup_message(params.iter().copied(), &mut out).unwrap();
        c.send(&out).await;
        let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        loop {
            let (tag, body) = c.read().await.expect("message");
            match tag {
                b'R' => {
                    let code = (&body[..4]).get_i32();
                    out.clear();
                    match code {
                        0 => break,
                        10 => frontend::sasl_initial_response(
                            "SCRAM-SHA-256",
                            scram.message(),
                            &mut out,
                        )
                        .unwrap(),
                        11 => {
                            scram.update(&body[4..]).unwrap();
                            frontend::sasl_response(scram.message(), &mut out).unwrap();
                        }
                        12 => scram.finish(&body[4..]).unwrap(),
                        other => panic!("unexpected auth request {other}"),
                    }
                    if !out.is_empty() {
                        c.send(&out).await;
                    }
                }
                b'E' => return Err((tag, body)),
                other => panic!("unexpected message {other} during auth"),
            }
        }
        let greeting = c.until_ready().await;
        Ok((c, greeting))
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next message, or `None` at end of stream.
    pub async fn read(&mut self) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = (&self.buf[1..5]).get_u32() as usize;
                if self.buf.len() > len {
                    let mut m = self.buf.split_to(len + 1);
                    let tag = m[0];
                    m.advance(5);
                    return Some((tag, m.freeze()));
                }
            }
            if self.stream.read_buf(&mut self.buf).await.ok()? == 0 {
                return None;
            }
        }
    }

    /// Messages up to and including ReadyForQuery (or the end of stream).
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        while let Some(m) = self.read().await {
            let done = m.0 == b'Z';
            msgs.push(m);
            if done {
                break;
            }
        }
        msgs
    }

    pub async fn query(&mut self, sql: &str) -> Vec<Msg> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).unwrap();
        self.send(&out).await;
        self.until_ready().await
    }
}

/// The value of one field of an ErrorResponse body.
pub fn error_field(body: &[u8], code: u8) -> Option<String> {
    let mut rest = body;
    while let Some((&c, tail)) = rest.split_first() {
        if c == 0 {
            return None;
        }
        let end = tail.iter().position(|&b| b == 0)?;
        if c == code {
            return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
        }
        rest = &tail[end + 1..];
    }
    None
}

/// `(name, value)` of a ParameterStatus body.
pub fn param_status(body: &[u8]) -> (String, String) {
    let mut parts = body.split(|&b| b == 0);
    let name = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
    let value = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
    (name, value)
}
