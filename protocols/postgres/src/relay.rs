//! The data path of an established session: two directions that run at
//! once in one task, so that a server's asynchronous messages
//! (NotificationResponse, NoticeResponse, ParameterStatus) reach an idle
//! client immediately.
//!
//! Bytes are forwarded as they arrive. Only the boundaries of messages are
//! tracked; a message is held back whole only when the gateway must read
//! it (Query and Parse for the statement hook; ReadyForQuery and
//! ParameterStatus from the server), so a huge DataRow or CopyData streams
//! through with bounded memory. Each write is awaited before the next read,
//! which carries a slow client's backpressure to the server.
//!
//! This module must never change a byte it does not have to: the one
//! rewrite is the `session_authorization` ParameterStatus, which would
//! otherwise reveal the server-side user.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backend::{set_param, BackendConn};
use crate::error::ProtocolError;
use crate::frame::{peek_header, HEADER_LEN};
use crate::hooks::{Hooks, SessionInfo, StatementOrigin};
use crate::messages::{backend_tag, frontend_tag, parameter_status, query, TX_IDLE};
use crate::stream::ClientStream;

/// How much the relay reads at once in each direction.
const READ_CHUNK: usize = 64 * 1024;
/// Longest ParameterStatus or ReadyForQuery we accept from a server.
const MAX_INSPECTED_SERVER_MESSAGE: usize = 1 << 20;
/// Longest message of any kind (PostgreSQL's own limit is 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;

/// Limits of one session's relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Longest Query or Parse message; these are held whole for the hook.
    pub max_statement_len: usize,
}

/// Why a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// The client sent Terminate or closed its connection.
    ClientGone,
    /// The client broke the protocol or its socket failed.
    ClientError(ProtocolError),
    /// The server closed the connection.
    ServerGone,
    /// The server connection failed.
    ServerError(ProtocolError),
    /// The gateway is shutting down and the session was idle.
    Shutdown,
}

/// State both directions share. Atomics because the session future must be
/// `Send`; both directions run in the same task, so `Relaxed` suffices.
#[derive(Debug)]
struct Shared {
    /// Query/Sync/FunctionCall messages forwarded minus ReadyForQuery
    /// received: zero means the server owes the client nothing.
    pending: AtomicI64,
    /// Transaction status of the last ReadyForQuery.
    status: AtomicU8,
    /// An extended-protocol message was sent after the last Sync.
    unsynced: AtomicBool,
    /// Set during shutdown: wake the session when it becomes idle.
    draining: AtomicBool,
    idle: Notify,
}

/// What the session needs to know once the relay has ended.
#[derive(Debug)]
pub struct RelayOutcome {
    /// Why it ended.
    pub end: RelayEnd,
    /// The server connection is between requests and can be reset.
    pub reusable: bool,
    /// Transaction status of the last ReadyForQuery.
    pub status: u8,
    /// The client left an extended-protocol exchange without Sync.
    pub unsynced: bool,
    /// The last message forwarded to the client was an ErrorResponse.
    pub last_was_error: bool,
}

/// Runs a session until either side ends it.
pub async fn run(
    client: &mut ClientStream,
    client_buf: &mut BytesMut,
    server: &mut BackendConn,
    session: &SessionInfo,
    hooks: &dyn Hooks,
    limits: RelayLimits,
    shutdown: &CancellationToken,
) -> RelayOutcome {
    let shared = Shared {
        pending: AtomicI64::new(0),
        status: AtomicU8::new(TX_IDLE),
        unsynced: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        idle: Notify::new(),
    };
    let BackendConn {
        stream,
        rbuf,
        params,
        ..
    } = server;
    let (mut client_rd, mut client_wr) = client.split();
    let (mut server_rd, mut server_wr) = stream.split();
    let mut up = Upstream {
        skip: 0,
        session,
        hooks,
        limits,
        shared: &shared,
    };
    let mut down = Downstream {
        skip: 0,
        shared: &shared,
        params,
        user: &session.user,
        last_tag: 0,
    };
    let end = {
        let c2s = up.run(&mut client_rd, &mut server_wr, client_buf);
        let s2c = down.run(&mut server_rd, &mut client_wr, rbuf);
        tokio::pin!(c2s, s2c);
        loop {
            tokio::select! {
                r = &mut c2s => break r,
                r = &mut s2c => break r,
                _ = shutdown.cancelled(), if !shared.draining.load(Ordering::Relaxed) => {
                    shared.draining.store(true, Ordering::Relaxed);
                    if shared.pending.load(Ordering::Relaxed) == 0 {
                        break RelayEnd::Shutdown;
                    }
                }
                _ = shared.idle.notified(), if shared.draining.load(Ordering::Relaxed) => {
                    if shared.pending.load(Ordering::Relaxed) == 0 {
                        break RelayEnd::Shutdown;
                    }
                }
            }
        }
    };
    let pending = shared.pending.load(Ordering::Relaxed);
    RelayOutcome {
        reusable: matches!(end, RelayEnd::ClientGone | RelayEnd::Shutdown)
            && pending == 0
            && down.skip == 0,
        status: shared.status.load(Ordering::Relaxed),
        unsynced: shared.unsynced.load(Ordering::Relaxed),
        last_was_error: down.last_tag == backend_tag::ERROR_RESPONSE,
        end,
    }
}

/// Client → server.
struct Upstream<'a> {
    /// Bytes of a passed-through message still to forward.
    skip: usize,
    session: &'a SessionInfo,
    hooks: &'a dyn Hooks,
    limits: RelayLimits,
    shared: &'a Shared,
}

enum Scan {
    /// Forward `0..n` and read more.
    Forward(usize),
    /// Forward `0..n`; then the client has terminated.
    Terminate(usize),
}

impl Upstream<'_> {
    async fn run<R, W>(&mut self, rd: &mut R, wr: &mut W, buf: &mut BytesMut) -> RelayEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let scan = match self.scan(buf) {
                Ok(s) => s,
                Err(e) => return RelayEnd::ClientError(e),
            };
            let (n, terminate) = match scan {
                Scan::Forward(n) => (n, false),
                Scan::Terminate(n) => (n, true),
            };
            if n > 0 {
                if let Err(e) = write(wr, &buf[..n]).await {
                    return RelayEnd::ServerError(e.into());
                }
                buf.advance(n);
            }
            if terminate {
                return RelayEnd::ClientGone;
            }
            buf.reserve(READ_CHUNK);
            match rd.read_buf(buf).await {
                Ok(0) => {
                    return if buf.is_empty() && self.skip == 0 {
                        RelayEnd::ClientGone
                    } else {
                        RelayEnd::ClientError(ProtocolError::Truncated)
                    }
                }
                Ok(_) => {}
                Err(e) => return RelayEnd::ClientError(e.into()),
            }
        }
    }

    /// Walks the complete or passed-through messages at the front of `buf`
    /// and returns how many bytes may be forwarded now.
    fn scan(&mut self, buf: &mut BytesMut) -> Result<Scan, ProtocolError> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(Scan::Forward(pos));
                }
            }
            let Some((tag, total)) = peek_header(&buf[pos..], MAX_MESSAGE)? else {
                return Ok(Scan::Forward(pos));
            };
            match tag {
                frontend_tag::QUERY | frontend_tag::PARSE => {
                    if total > self.limits.max_statement_len {
                        return Err(ProtocolError::TooLong {
                            tag,
                            len: total,
                            max: self.limits.max_statement_len,
                        });
                    }
                    if buf.len() - pos < total {
                        buf.reserve(total - (buf.len() - pos));
                        return Ok(Scan::Forward(pos));
                    }
                    let body = &buf[pos + HEADER_LEN..pos + total];
                    if tag == frontend_tag::QUERY {
                        let sql = query::query_text(body)?;
                        self.hooks
                            .statement(self.session, StatementOrigin::Query, sql);
                        self.shared.pending.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let (_name, sql) = query::parse_text(body)?;
                        self.hooks
                            .statement(self.session, StatementOrigin::Parse, sql);
                        self.shared.unsynced.store(true, Ordering::Relaxed);
                    }
                }
                frontend_tag::SYNC => {
                    self.shared.pending.fetch_add(1, Ordering::Relaxed);
                    self.shared.unsynced.store(false, Ordering::Relaxed);
                }
                frontend_tag::FUNCTION_CALL => {
                    self.shared.pending.fetch_add(1, Ordering::Relaxed);
                }
                frontend_tag::TERMINATE => return Ok(Scan::Terminate(pos)),
                b'B' | b'E' | b'D' | b'C' => {
                    self.shared.unsynced.store(true, Ordering::Relaxed);
                }
                _ => {}
            }
            self.skip = total;
        }
    }
}

/// Server → client.
struct Downstream<'a> {
    skip: usize,
    shared: &'a Shared,
    params: &'a mut Vec<(String, String)>,
    /// The gateway user, shown as `session_authorization`.
    user: &'a str,
    last_tag: u8,
}

impl Downstream<'_> {
    async fn run<R, W>(&mut self, rd: &mut R, wr: &mut W, buf: &mut BytesMut) -> RelayEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut rewritten = BytesMut::new();
        loop {
            if let Err(e) = self.forward(wr, buf, &mut rewritten).await {
                return e;
            }
            buf.reserve(READ_CHUNK);
            match rd.read_buf(buf).await {
                Ok(0) => return RelayEnd::ServerGone,
                Ok(_) => {}
                Err(e) => return RelayEnd::ServerError(e.into()),
            }
        }
    }

    /// Forwards everything forwardable in `buf`, tracking ReadyForQuery and
    /// ParameterStatus on the way.
    async fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        wr: &mut W,
        buf: &mut BytesMut,
        rewritten: &mut BytesMut,
    ) -> Result<(), RelayEnd> {
        let mut pos = 0;
        let mut emitted = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    break;
                }
            }
            let header = peek_header(&buf[pos..], MAX_MESSAGE).map_err(RelayEnd::ServerError)?;
            let Some((tag, total)) = header else { break };
            self.last_tag = tag;
            match tag {
                backend_tag::READY_FOR_QUERY | backend_tag::PARAMETER_STATUS => {
                    if total > MAX_INSPECTED_SERVER_MESSAGE {
                        return Err(RelayEnd::ServerError(ProtocolError::TooLong {
                            tag,
                            len: total,
                            max: MAX_INSPECTED_SERVER_MESSAGE,
                        }));
                    }
                    if buf.len() - pos < total {
                        break;
                    }
                    let body = &buf[pos + HEADER_LEN..pos + total];
                    if tag == backend_tag::READY_FOR_QUERY {
                        self.ready(body);
                    } else if let Some((name, value)) = parameter_status::decode(body) {
                        if name == "session_authorization" {
                            // Hide the server-side user behind the gateway user.
                            rewritten.clear();
                            parameter_status::encode(name, self.user, rewritten);
                            write(wr, &buf[emitted..pos])
                                .await
                                .map_err(|e| RelayEnd::ClientError(e.into()))?;
                            write(wr, rewritten)
                                .await
                                .map_err(|e| RelayEnd::ClientError(e.into()))?;
                            emitted = pos + total;
                        } else {
                            set_param(self.params, name.to_owned(), value.to_owned());
                        }
                    }
                }
                _ => {}
            }
            self.skip = total;
        }
        if pos > emitted {
            write(wr, &buf[emitted..pos])
                .await
                .map_err(|e| RelayEnd::ClientError(e.into()))?;
        }
        buf.advance(pos);
        Ok(())
    }

    fn ready(&mut self, body: &[u8]) {
        if let Some(&status) = body.first() {
            self.shared.status.store(status, Ordering::Relaxed);
        }
        let left = self.shared.pending.fetch_sub(1, Ordering::Relaxed) - 1;
        if left <= 0 && self.shared.draining.load(Ordering::Relaxed) {
            self.shared.idle.notify_one();
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cancel::SessionId;
    use crate::hooks::{Route, UserAuth};
    use crate::messages::error_response::ClientError;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(StatementOrigin, Vec<u8>)>>);

    impl Hooks for Recorder {
        fn user(&self, _: &str) -> Option<UserAuth> {
            None
        }
        fn route(&self, _: &str, _: &str) -> Result<Route, ClientError> {
            Err(ClientError::fatal(
                crate::messages::error_response::SqlState::INVALID_CATALOG_NAME,
                "none",
            ))
        }
        fn statement(&self, _: &SessionInfo, origin: StatementOrigin, sql: &[u8]) {
            self.0.lock().unwrap().push((origin, sql.to_vec()));
        }
    }

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn session() -> SessionInfo {
        SessionInfo {
            id: SessionId(1),
            user: "agent".into(),
            target: "app".into(),
            peer: "127.0.0.1:1".parse().unwrap(),
            tls: false,
        }
    }

    fn shared() -> Shared {
        Shared {
            pending: AtomicI64::new(0),
            status: AtomicU8::new(TX_IDLE),
            unsynced: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
        }
    }

    /// A reader that delivers `bytes` in pieces of `size`.
    fn chunked(bytes: &[u8], size: usize) -> tokio_test::io::Mock {
        let mut b = tokio_test::io::Builder::new();
        for piece in bytes.chunks(size) {
            b.read(piece);
        }
        b.build()
    }

    const CHUNKS: [usize; 8] = [1, 2, 3, 5, 7, 64, 4096, usize::MAX];

    #[tokio::test]
    async fn client_bytes_pass_unchanged_at_every_chunking() {
        let mut forwarded = Vec::new();
        forwarded.extend(msg(b'Q', b"select 1; select 2\0"));
        forwarded.extend(msg(b'P', b"s1\0select $1\0\0\0"));
        forwarded.extend(msg(b'B', b"\0s1\0\0\0\0\0\0\0"));
        forwarded.extend(msg(b'E', b"\0\0\0\0\0"));
        forwarded.extend(msg(b'S', b""));
        forwarded.extend(msg(b'd', &vec![b'x'; 100_000]));
        let mut input = forwarded.clone();
        input.extend(msg(b'X', b""));
        for size in CHUNKS {
            let hooks = Recorder::default();
            let shared = shared();
            let session = session();
            let mut up = Upstream {
                skip: 0,
                session: &session,
                hooks: &hooks,
                limits: RelayLimits {
                    max_statement_len: 1 << 20,
                },
                shared: &shared,
            };
            let mut out = Vec::new();
            let mut buf = BytesMut::new();
            let end = up
                .run(
                    &mut chunked(&input, size.min(input.len())),
                    &mut out,
                    &mut buf,
                )
                .await;
            assert!(matches!(end, RelayEnd::ClientGone), "{size}: {end:?}");
            assert!(out == forwarded, "chunks of {size}: bytes changed");
            let seen = hooks.0.into_inner().unwrap();
            assert_eq!(
                seen,
                vec![
                    (StatementOrigin::Query, b"select 1; select 2".to_vec()),
                    (StatementOrigin::Parse, b"select $1".to_vec())
                ],
                "{size}"
            );
            assert_eq!(shared.pending.load(Ordering::Relaxed), 2, "Query + Sync");
            assert!(!shared.unsynced.load(Ordering::Relaxed));
        }
    }

    #[tokio::test]
    async fn oversized_statements_and_bad_lengths_are_protocol_errors() {
        let hooks = Recorder::default();
        let shared = shared();
        let session = session();
        let mut up = Upstream {
            skip: 0,
            session: &session,
            hooks: &hooks,
            limits: RelayLimits {
                max_statement_len: 16,
            },
            shared: &shared,
        };
        let input = msg(b'Q', b"select 'far too long for the limit'\0");
        let end = up
            .run(
                &mut chunked(&input, input.len()),
                &mut Vec::new(),
                &mut BytesMut::new(),
            )
            .await;
        assert!(
            matches!(end, RelayEnd::ClientError(ProtocolError::TooLong { .. })),
            "{end:?}"
        );
        let mut up = Upstream { skip: 0, ..up };
        let input = [b'S', 0, 0, 0, 1];
        let end = up
            .run(
                &mut chunked(&input, 5),
                &mut Vec::new(),
                &mut BytesMut::new(),
            )
            .await;
        assert!(
            matches!(end, RelayEnd::ClientError(ProtocolError::BadLength { .. })),
            "{end:?}"
        );
        assert!(hooks.0.into_inner().unwrap().is_empty());
    }

    #[tokio::test]
    async fn server_bytes_pass_unchanged_except_the_server_user() {
        let server_says = |user: &[u8]| -> Vec<u8> {
            let mut auth = b"session_authorization\0".to_vec();
            auth.extend_from_slice(user);
            auth.push(0);
            [
                msg(b'S', b"application_name\0psql\0"),
                msg(
                    b'T',
                    b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
                ),
                msg(b'D', &[7u8; 70_000]),
                msg(b'S', &auth),
                msg(b'Z', b"T"),
            ]
            .concat()
        };
        let input = server_says(b"app_owner");
        let expected = server_says(b"agent");
        for size in CHUNKS {
            let shared = shared();
            shared.pending.store(1, Ordering::Relaxed);
            let mut params = Vec::new();
            let mut down = Downstream {
                skip: 0,
                shared: &shared,
                params: &mut params,
                user: "agent",
                last_tag: 0,
            };
            let mut out = Vec::new();
            let end = down
                .run(
                    &mut chunked(&input, size.min(input.len())),
                    &mut out,
                    &mut BytesMut::new(),
                )
                .await;
            assert!(matches!(end, RelayEnd::ServerGone), "{end:?}");
            assert!(out == expected, "chunks of {size}: bytes differ");
            assert_eq!(
                params,
                vec![("application_name".to_owned(), "psql".to_owned())]
            );
            assert_eq!(shared.status.load(Ordering::Relaxed), b'T');
            assert_eq!(shared.pending.load(Ordering::Relaxed), 0);
        }
    }
}
