//! A socket of either kind (plain TCP or TLS) behind one trait object. The
//! MySQL relay is strictly request/response, so it never needs to split a
//! stream: dynamic dispatch per read or write costs nothing next to the
//! system call behind it.

use tokio::io::{AsyncRead, AsyncWrite};

/// Anything the gateway can talk MySQL over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// A connection and whether it is encrypted.
pub struct Stream {
    /// The socket.
    pub io: Box<dyn Io>,
    /// True once TLS is established.
    pub tls: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("tls", &self.tls).finish()
    }
}
