//! Errors of the PostgreSQL side. A [`ProtocolError`] means the peer broke
//! the protocol (or the socket broke): the connection it came from is
//! closed. Refusals that keep a session alive are not errors; they are
//! answered on the wire by `messages::error_response`.

use std::io;

/// A peer sent bytes that are not valid protocol, or the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A message length below the minimum of 4.
    #[error("invalid length {len} for message type {tag:#04x}")]
    BadLength {
        /// The message type byte.
        tag: u8,
        /// The length field.
        len: usize,
    },
    /// A message longer than the configured limit.
    #[error("message type {tag:#04x} of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// The message type byte.
        tag: u8,
        /// The length field.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A startup packet with an impossible length.
    #[error("invalid startup packet length {0}")]
    BadStartupLength(usize),
    /// The stream ended inside a message.
    #[error("connection closed in the middle of a message")]
    Truncated,
    /// A message body that does not decode.
    #[error("malformed {what} message")]
    Malformed {
        /// Which message.
        what: &'static str,
    },
    /// The server sent a message the relay's model of its protocol state
    /// cannot place: that model is gone, and so is the session.
    #[error("sqlgate lost track of the server's protocol state: message {tag:?} {reason}")]
    Desync {
        /// The server message's type byte, as a character.
        tag: char,
        /// What was expected instead.
        reason: &'static str,
    },
    /// A resource the gateway shares between sessions stayed in use.
    #[error(transparent)]
    Busy(#[from] sqlgate_net::budget::Busy),
    /// A message that is not allowed at this point of the protocol.
    #[error("unexpected message type {tag:#04x} {during}")]
    Unexpected {
        /// The message type byte.
        tag: u8,
        /// Where we were.
        during: &'static str,
    },
}

impl ProtocolError {
    /// A body that does not decode.
    pub fn malformed(what: &'static str) -> Self {
        ProtocolError::Malformed { what }
    }
}
