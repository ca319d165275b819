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

/// How long a session waits for its share before it gives up: shares
/// are held while clients read, and a client may stop reading.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The budget stayed in use for [`WAIT`].
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("sqlgate's memory for masked rows held whole stayed in use for {0:?}")]
pub struct Busy(pub std::time::Duration);

/// Waits for `bytes` of the budget (at most half of it, so that two
/// sessions can always hold a row), up to [`WAIT`].
pub async fn hold(bytes: usize) -> Result<Share, Busy> {
    let units = bytes.div_ceil(UNIT).clamp(1, UNITS / 2) as u32;
    match tokio::time::timeout(WAIT, HELD.acquire_many(units)).await {
        Ok(Ok(share)) => Ok(share),
        _ => Err(Busy(WAIT)),
    }
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
        // More than half the budget is clamped to half: two sessions can
        // always hold a row.
        let one = hold(10 * TOTAL).await.unwrap();
        let two = hold(10 * TOTAL).await.unwrap();
        assert_eq!(available(), 0);
        drop((one, two));
        assert_eq!(available(), TOTAL);
    }
}
