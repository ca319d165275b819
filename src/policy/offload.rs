//! Judging a large text without stalling other sessions.
//!
//! Why: statements are parsed on the async workers that also move every
//! other session's bytes; a text of megabytes takes long enough to parse
//! that, on a worker, it stalls every session scheduled there. Texts past
//! [`LARGE_TEXT`] are judged with the worker handed over to the runtime
//! (`block_in_place`), and at most [`MAX_LARGE_AT_ONCE`] at a time across
//! the process, which also bounds the memory their parse trees take
//! together. This module must never hold a permit across an await.

use std::sync::{Condvar, Mutex};

/// Texts at least this long are judged off the async worker.
pub const LARGE_TEXT: usize = 16 * 1024;
/// Large texts judged at once, process-wide.
pub const MAX_LARGE_AT_ONCE: usize = 2;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Runs `judge` for a text of `len` bytes: in place when it is small or
/// the runtime cannot hand a worker over (a current-thread runtime, as in
/// `sqlgate explain` and unit tests), else off the worker, waiting its
/// turn among large texts.
pub fn judge<T>(len: usize, judge: impl FnOnce() -> T) -> T {
    if len < LARGE_TEXT {
        return judge();
    }
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if !multi_thread {
        return judge();
    }
    tokio::task::block_in_place(|| {
        let _permit = Permit::take();
        judge()
    })
}

/// One of the [`MAX_LARGE_AT_ONCE`] turns; given back when dropped.
struct Permit;

impl Permit {
    fn take() -> Permit {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= MAX_LARGE_AT_ONCE {
            running = FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        FREED.notify_one();
    }
}
