//! Classifying a long text without stalling other sessions.
//!
//! Why: statements are judged on the runtime thread that also moves every
//! other session's bytes; a text of megabytes takes long enough to parse
//! that it would stall every session there. A relay asks before it judges
//! a text of [`LONG_TEXT`] bytes or more (`SessionHooks::ahead`); the
//! text is then split, parsed and classified on a blocking thread while
//! the relay awaits, at most [`MAX_LARGE_AT_ONCE`] at a time across the
//! process (which also bounds the memory their parse trees take
//! together), and judged in place from that classification. This works
//! on either runtime flavour (the one-worker default is a current-thread
//! runtime, which cannot hand its thread over).
//!
//! This module must never block the runtime's thread, nor let a turn go
//! before the classification it was taken for has ended.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::classify::StatementRisk;
use super::engine::Engine;
use super::parse::SqlDialect;
pub use sqlgate_net::ahead::{Ahead, LONG_TEXT};

/// Long texts classified at once, process-wide.
pub const MAX_LARGE_AT_ONCE: usize = 2;

static TURNS: Semaphore = Semaphore::const_new(MAX_LARGE_AT_ONCE);

/// A long text classified ahead of its judging: the text and its
/// statements, for the judging of the same bytes to take.
pub type Classified = Arc<Mutex<Option<(Box<[u8]>, Arc<[StatementRisk]>)>>>;

/// Classifies `sql` on a blocking thread, in its turn among long texts,
/// and leaves the outcome in `slot`. A classification that panics leaves
/// `slot` empty: the text is then classified in place.
pub fn classify(engine: Arc<Engine>, dialect: SqlDialect, sql: &[u8], slot: Classified) -> Ahead {
    let text: Box<[u8]> = sql.into();
    Box::pin(async move {
        // (The semaphore is never closed.)
        let Ok(turn) = TURNS.acquire().await else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            // Held on the blocking thread: a session that ends meanwhile
            // does not free the turn before the parse has ended.
            let _turn = turn;
            let classified = engine.classify(dialect, &text);
            (text, classified)
        })
        .await;
        if let Ok(done) = done {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(done);
        }
    })
}
