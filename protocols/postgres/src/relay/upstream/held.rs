//! A held message's home: a statement (or an execution, at its Bind) the
//! judge holds waits here before it is forwarded, until its ticket's wait
//! ends: its record durable, a person's approval. Its notice reaches the
//! client as the wait begins; the client leaving or a CancelRequest
//! withdraws it; the scan then meets the message again with the verdict
//! the wait ended in.
//!
//! This module must never forward what waits, nor let a wait that ended
//! in a refusal run.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::super::shared::{RelayEnd, READ_CHUNK};
use super::Upstream;
use crate::hooks::Ticket;
use crate::messages::error_response::{ClientError, ClientNotice, SqlState};

impl Upstream<'_> {
    /// Begins a held message's wait: its notice, if any, is queued for
    /// the client at once.
    pub(super) fn wait_for(&mut self, ticket: Ticket) {
        if let Some(n) = ticket.notice {
            let mut bytes = BytesMut::new();
            ClientNotice::from(n).encode(&mut bytes);
            self.shared.push_notice(bytes);
        }
        self.waiting = Some(ticket.wait);
    }

    /// Awaits the held message's wait, reading the client meanwhile (up to
    /// a bound), and leaves its verdict for the scan that meets the
    /// message again. A client that leaves withdraws what waits (it is
    /// dropped with the session).
    pub(super) async fn hold<R>(&mut self, rd: &mut R, buf: &mut BytesMut) -> Result<(), RelayEnd>
    where
        R: AsyncRead + Unpin,
    {
        let masks = self.judged.take().unwrap_or_default();
        let Some(mut wait) = self.waiting.take() else {
            self.resumed = Some(Ok(masks));
            return Ok(());
        };
        let bound = self.limits.max_statement_len.saturating_add(READ_CHUNK);
        let cancel = self.shared.cancel.clone();
        let waited = loop {
            buf.reserve(READ_CHUNK);
            tokio::select! {
                r = &mut wait => break r.map_err(ClientError::from),
                // A cancel withdraws what waits: dropped here.
                _ = cancel.notified() => break Err(cancelled()),
                n = rd.read_buf(buf), if buf.len() < bound => match n {
                    Ok(0) => return Err(RelayEnd::ClientGone),
                    Ok(n) => self.received += n as u64,
                    Err(e) => return Err(RelayEnd::ClientError(e.into())),
                },
            }
        };
        self.resumed = Some(waited.map(|()| masks));
        Ok(())
    }
}

/// What a client whose CancelRequest withdrew a waiting statement gets:
/// what PostgreSQL answers a cancelled statement.
fn cancelled() -> ClientError {
    ClientError::error(
        SqlState(*b"57014"),
        "canceling statement due to user request",
    )
    .with_detail("sqlgate: the statement was withdrawn before it ran")
}
