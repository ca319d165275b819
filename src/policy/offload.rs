//! Judging a long text without stalling other sessions.
//!
//! Why: statements are judged on the runtime thread that also moves every
//! other session's bytes; a text of megabytes takes long enough to parse,
//! check and plan that it would stall every session there. A relay asks
//! before it judges a text of [`LONG_TEXT`] bytes or more
//! (`SessionHooks::ahead`): a copy of the session's policy state judges
//! it on a blocking thread while the relay awaits, at most
//! [`MAX_LARGE_AT_ONCE`] at a time across the process (which also bounds
//! the memory their parse trees take together), and the statement hook
//! then takes the copy's outcome and state as the session's own. This
//! works on either runtime flavour (the one-worker default is a
//! current-thread runtime, which cannot hand its thread over).
//!
//! This module must never block the runtime's thread, let a turn go
//! before the judging it was taken for has ended, or change the session's
//! own state: a copy that never comes back (a panic, a session ending)
//! leaves it as it was.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::engine::{Judged, Refusal, SessionPolicy};
pub use sqlgate_net::ahead::{Ahead, LONG_TEXT};

/// Long texts judged at once, process-wide.
pub const MAX_LARGE_AT_ONCE: usize = 2;

static TURNS: Semaphore = Semaphore::const_new(MAX_LARGE_AT_ONCE);

/// A long text judged ahead of its statement hook.
#[derive(Debug)]
pub struct JudgedAhead {
    /// The session's state after the judging.
    pub policy: SessionPolicy,
    /// The text judged.
    pub sql: Box<[u8]>,
    /// Its judgement.
    pub judged: Result<Vec<Judged>, Refusal>,
}

/// Where a session's judging ahead leaves its outcome.
pub type Slot = Arc<Mutex<Option<JudgedAhead>>>;

/// Judges `sql` with `policy` (a copy of the session's) on a blocking
/// thread, in its turn among long texts, and leaves the outcome in
/// `slot` (which its caller empties first). A judging that panics leaves
/// `slot` empty: the text is then judged in place, by the session's own
/// state.
pub fn judge(mut policy: SessionPolicy, sql: &[u8], slot: Slot) -> Ahead {
    let sql: Box<[u8]> = sql.into();
    Box::pin(async move {
        // (The semaphore is never closed.)
        let Ok(turn) = TURNS.acquire().await else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || {
            // Held on the blocking thread: a session that ends meanwhile
            // does not free the turn before the judging has ended.
            let _turn = turn;
            let judged = policy.judge_text(&sql, &sqlgate_net::sample::lossy(&sql));
            JudgedAhead {
                policy,
                sql,
                judged,
            }
        })
        .await;
        if let Ok(done) = done {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(done);
        }
    })
}

/// The outcome in `slot` when it is of `sql` (taken either way; a
/// shorter text never had one asked, and finds none).
pub fn take(slot: &Slot, sql: &[u8]) -> Option<JudgedAhead> {
    if sql.len() < LONG_TEXT {
        return None;
    }
    let done = slot.lock().unwrap_or_else(|e| e.into_inner()).take()?;
    (*done.sql == *sql).then_some(done)
}
