//! What the relay's two directions share: the model behind a lock, the
//! flags and wake-ups between them, the limits and the ways a relay ends.
//!
//! Why a file of its own: `upstream.rs` and `downstream.rs` use these and
//! `mod.rs` runs them; kept here, every import in the relay points one
//! way. This module must never hold the model's lock across an await.

use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

use super::model::ServerModel;
use crate::error::ProtocolError;

/// How much the relay reads at once in each direction.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// Messages the server may owe answers to before the client is no longer
/// read (a pipeline deeper than this waits for the server).
pub(super) const MAX_QUEUED: usize = 16 * 1024;

pub use sqlgate_net::session::RelayLimits;

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
    /// The server answered something the relay's model cannot place
    /// (`ProtocolError::Desync`): the session ends rather than guess.
    Desync(ProtocolError),
    /// A limit of the gateway's own was reached (a masked row too long to
    /// hold): the session ends with that error.
    Limit(ProtocolError),
    /// The gateway is shutting down and the session was idle.
    Shutdown,
    /// A message could not be let through nor refused in place (an
    /// execution whose record could not be made durable): the session
    /// ends with this error.
    Refused(crate::messages::error_response::ClientError),
}

/// State both directions share. Both run in the same task; the lock is
/// never held across an await.
#[derive(Debug)]
pub(super) struct Shared {
    pub model: Mutex<ServerModel>,
    /// An extended-protocol message was sent after the last Sync.
    pub unsynced: AtomicBool,
    /// Set during shutdown: wake the session when it becomes idle.
    pub draining: AtomicBool,
    pub idle: Notify,
    /// The model's queue has room again.
    pub room: Notify,
    /// Notices of the gateway's own for the client (a held statement's
    /// request), sent by the downstream between messages.
    pub notices: Mutex<Vec<bytes::BytesMut>>,
    /// A notice was queued.
    pub notice: Notify,
    /// The client's CancelRequest: a statement held before it is
    /// forwarded is withdrawn.
    pub cancel: std::sync::Arc<Notify>,
}

impl Shared {
    /// Queues a notice for the client.
    pub fn push_notice(&self, notice: bytes::BytesMut) {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notice);
        self.notice.notify_one();
    }

    /// The notices queued, taken.
    pub fn take_notices(&self) -> Vec<bytes::BytesMut> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn model(&self) -> std::sync::MutexGuard<'_, ServerModel> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes and flushes.
pub(super) async fn write<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
