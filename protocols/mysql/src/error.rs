//! Errors of the MySQL side. A [`ProtocolError`] closes the connection it
//! came from; refusals that keep a session alive are ERR packets built in
//! `messages::err`.

use std::io;

/// A peer broke the protocol, or the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The stream ended inside a packet.
    #[error("connection closed in the middle of a packet")]
    Truncated,
    /// A packet longer than the limit for its kind.
    #[error("packet of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// The packet length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A packet that does not decode.
    #[error("malformed {0} packet")]
    Malformed(&'static str),
    /// A resource the gateway shares between sessions stayed in use.
    #[error(transparent)]
    Busy(#[from] sqlgate_net::budget::Busy),
    /// A packet out of sequence or unexpected at this point.
    #[error("unexpected packet {0}")]
    Unexpected(&'static str),
}
