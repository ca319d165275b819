//! The messages the gateway inspects or builds. Everything else passes
//! through as framed bytes and is never decoded.
//!
//! Decoding of peer input goes through [`cursor::Cursor`], which checks
//! every bound: pgwire's `decode_body` implementations use panicking
//! `Buf::get_*` calls on short bodies, so they are not used on hostile
//! input. Encoding of what the gateway sends uses pgwire's types.

pub mod auth;
pub mod cursor;
pub mod error_response;
pub mod parameter_status;
pub mod query;
pub mod startup;

use bytes::BytesMut;
use pgwire::messages::Message;

/// Type bytes of messages a client (frontend) sends that the gateway
/// looks at.
pub mod frontend_tag {
    /// Simple query.
    pub const QUERY: u8 = b'Q';
    /// Extended protocol: Parse.
    pub const PARSE: u8 = b'P';
    /// Extended protocol: Sync.
    pub const SYNC: u8 = b'S';
    /// Extended protocol: Flush.
    pub const FLUSH: u8 = b'H';
    /// Function call (legacy fast path).
    pub const FUNCTION_CALL: u8 = b'F';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';
    /// Password, SASLInitialResponse and SASLResponse share this type.
    pub const PASSWORD: u8 = b'p';
}

/// Type bytes of messages a server (backend) sends that the gateway looks
/// at.
pub mod backend_tag {
    /// ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
}

/// Transaction status byte of ReadyForQuery: idle.
pub const TX_IDLE: u8 = b'I';

/// Appends a pgwire message to `buf`. Encoding can only fail for messages
/// over pgwire's size limits, which nothing the gateway builds comes near;
/// such a message is dropped with a log line rather than a panic.
pub fn encode<M: Message + std::fmt::Debug>(msg: &M, buf: &mut BytesMut) {
    if let Err(e) = msg.encode(buf) {
        tracing::error!(error = %e, "could not encode {msg:?}");
    }
}

/// Appends a ReadyForQuery with the given transaction status byte.
pub fn ready_for_query(status: u8, buf: &mut BytesMut) {
    use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
    let status = match status {
        b'T' => TransactionStatus::Transaction,
        b'E' => TransactionStatus::Error,
        _ => TransactionStatus::Idle,
    };
    encode(&ReadyForQuery::new(status), buf);
}
