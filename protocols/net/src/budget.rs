//! Memory for messages a gateway holds whole to mask them (a PostgreSQL
//! DataRow, a MySQL row packet), shared by every session of the process.
//!
//! Why: each protocol caps one held message, but many sessions holding
//! large ones at once would still take the gateway's memory without
//! bound. A session that must hold a large message first takes its share
//! of [`TOTAL`], waiting while others hold theirs. This module must never
//! hand out more than [`TOTAL`], nor make a request larger than it wait
//! forever.

use tokio::sync::{Semaphore, SemaphorePermit};

/// Memory all held messages may take together.
pub const TOTAL: usize = 256 << 20;
/// Messages below this are not counted (they fit a read chunk).
pub const SMALL: usize = 64 * 1024;
const UNIT: usize = 64 * 1024;
const UNITS: usize = TOTAL / UNIT;

static HELD: Semaphore = Semaphore::const_new(UNITS);

/// A share of the budget, given back when dropped.
pub type Share = SemaphorePermit<'static>;

/// Waits for `bytes` of the budget (at most all of it).
pub async fn hold(bytes: usize) -> Option<Share> {
    let units = bytes.div_ceil(UNIT).clamp(1, UNITS) as u32;
    HELD.acquire_many(units).await.ok()
}

/// Shares not taken right now (for tests).
pub fn available() -> usize {
    HELD.available_permits() * UNIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shares_are_given_back_and_never_exceed_the_total() {
        assert_eq!(available(), TOTAL);
        let a = hold(TOTAL / 2).await.unwrap();
        assert_eq!(available(), TOTAL / 2);
        drop(a);
        assert_eq!(available(), TOTAL);
        // More than the whole budget is clamped to it: granted, not
        // waited for forever.
        let all = hold(10 * TOTAL).await.unwrap();
        assert_eq!(available(), 0);
        drop(all);
        assert_eq!(available(), TOTAL);
    }
}
