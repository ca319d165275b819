//! Packets in and out of the relay: whole commands from the client,
//! responses from the server until they are complete, and the reads and
//! writes under them. Nothing here judges or masks.

use super::*;

impl Relay<'_> {
    pub(super) async fn send(&mut self, seq: u8, payload: &[u8]) -> Result<u8, Side> {
        packet::write(&mut self.client.io, seq, payload)
            .await
            .map_err(|e| Side::Client(e.into()))
    }

    /// Waits for the header of the client's next packet; its payload length.
    pub(super) async fn next_packet_len(&mut self) -> Result<usize, Side> {
        let ok = fill(&mut self.client.io, &mut self.cbuf, HEADER_LEN)
            .await
            .map_err(|e| Side::Client(e.into()))?;
        header(&self.cbuf)
            .filter(|_| ok)
            .map(|(len, _)| len)
            .ok_or(Side::Client(ProtocolError::Truncated))
    }

    /// Reads a whole command (all fragments): `(raw bytes, joined payload)`.
    pub(super) async fn read_whole_command(
        &mut self,
        first_len: usize,
    ) -> Result<(Vec<u8>, Vec<u8>), Side> {
        let mut raw = Vec::with_capacity(HEADER_LEN + first_len);
        let mut payload = Vec::with_capacity(first_len);
        loop {
            let len = self.next_packet_len().await?;
            if payload.len() + len > self.limits.max_statement_len {
                return Err(Side::Client(ProtocolError::TooLong {
                    len: payload.len() + len,
                    max: self.limits.max_statement_len,
                }));
            }
            let ok = fill(&mut self.client.io, &mut self.cbuf, HEADER_LEN + len)
                .await
                .map_err(|e| Side::Client(e.into()))?;
            if !ok {
                return Err(Side::Client(ProtocolError::Truncated));
            }
            raw.extend_from_slice(&self.cbuf[..HEADER_LEN + len]);
            payload.extend_from_slice(&self.cbuf[HEADER_LEN..HEADER_LEN + len]);
            self.cbuf.advance(HEADER_LEN + len);
            if len < MAX_FRAGMENT {
                return Ok((raw, payload));
            }
        }
    }

    /// Streams a command to the server without holding it whole.
    pub(super) async fn pass_command(
        &mut self,
        expect: Option<Expect>,
    ) -> Result<Option<Expect>, Side> {
        self.stream_command(true).await?;
        Ok(expect)
    }

    /// Reads a command (all fragments) and drops it, without holding it.
    pub(super) async fn discard_command(&mut self) -> Result<(), Side> {
        self.stream_command(false).await
    }

    /// Reads a command fragment by fragment, forwarding it to the server
    /// (`forward`) or dropping it.
    pub(super) async fn stream_command(&mut self, forward: bool) -> Result<(), Side> {
        loop {
            let len = self.next_packet_len().await?;
            let mut left = HEADER_LEN + len;
            while left > 0 {
                if self.cbuf.is_empty() {
                    self.cbuf.reserve(READ_CHUNK);
                    let n = self
                        .client
                        .io
                        .read_buf(&mut self.cbuf)
                        .await
                        .map_err(|e| Side::Client(e.into()))?;
                    if n == 0 {
                        return Err(Side::Client(ProtocolError::Truncated));
                    }
                }
                let n = left.min(self.cbuf.len());
                if forward {
                    write(&mut self.server.stream.io, &self.cbuf[..n])
                        .await
                        .map_err(|e| Side::Server(e.into()))?;
                }
                self.cbuf.advance(n);
                left -= n;
            }
            if len < MAX_FRAGMENT {
                return Ok(());
            }
        }
    }

    /// Streams the client's LOCAL INFILE data (packets up to an empty one)
    /// to the server.
    pub(super) async fn pass_infile(&mut self) -> Result<(), Side> {
        loop {
            let len = self.next_packet_len().await?;
            self.pass_command(None).await?;
            if len == 0 {
                return Ok(());
            }
        }
    }

    /// Forwards the server's response to the client until it is complete.
    pub(super) async fn relay_response(
        &mut self,
        expect: Expect,
        sbuf: &mut BytesMut,
    ) -> Result<(), Side> {
        let mut response =
            Response::new(expect, self.server.deprecate_eof()).with_tap(self.tap(true));
        loop {
            let n = response.scan(sbuf).map_err(Side::Server)?;
            if n > 0 {
                write(&mut self.client.io, &sbuf[..n])
                    .await
                    .map_err(|e| Side::Client(e.into()))?;
                sbuf.advance(n);
            }
            if response.wants_client_data() {
                self.pass_infile().await?;
                response.client_data_sent();
                continue;
            }
            if response.done() {
                if !sbuf.is_empty() {
                    return Err(Side::Server(ProtocolError::Unexpected(
                        "server data after the end of a response",
                    )));
                }
                self.report(&mut response);
                return Ok(());
            }
            sbuf.reserve(READ_CHUNK);
            match self.server.stream.io.read_buf(sbuf).await {
                Ok(0) => return Err(Side::Server(ProtocolError::Truncated)),
                Ok(_) => {}
                Err(e) => return Err(Side::Server(e.into())),
            }
        }
    }
}

/// Reads until `buf` holds at least `n` bytes; `Ok(false)` at end of stream.
pub(super) async fn fill<R: AsyncRead + Unpin + ?Sized>(
    rd: &mut R,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<bool> {
    while buf.len() < n {
        buf.reserve(READ_CHUNK.max(n - buf.len()));
        if rd.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(super) async fn write<W: AsyncWrite + Unpin + ?Sized>(
    wr: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
