//! Work a relay awaits before it asks its hooks about a long statement
//! text. Why: a text of megabytes takes long enough to parse that, on the
//! thread that moves every other session's bytes, it would stall them
//! all; the engine judges such a text on a blocking thread while the
//! relay awaits, and its statement hook then answers from that judging.
//!
//! This module must never judge: it only names the wait and the length
//! past which a relay asks for one.

use std::future::Future;
use std::pin::Pin;

/// Texts at least this long are asked about before they are judged
/// ([`Ahead`]); shorter ones are judged in place at once.
pub const LONG_TEXT: usize = 16 * 1024;

/// What the relay awaits before the statement hook sees a long text.
pub type Ahead = Pin<Box<dyn Future<Output = ()> + Send>>;
