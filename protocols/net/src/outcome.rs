//! What a statement came to, as a relay sees it in the server's answers:
//! done (its command tag, the rows it returned or affected, and the first
//! rows of its result as the client received them) or failed (the error's
//! code and message as the client saw them). Relays report outcomes in the
//! order the server answers; recording and metrics consume them.
//!
//! A sample holds values exactly as they left for the client — after
//! masking — and this module must never be handed a row before its
//! masks were applied. Samples are built in `sample.rs`; an outcome
//! borrows its sample and tag where the relay can lend them, so
//! reporting one copies nothing the sink does not keep.

use std::borrow::Cow;

pub use crate::sample::{shown, ResultSample, RowValues, SampleLimits, SampleRow, Sampler};

/// One statement's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// It completed.
    Done {
        /// The server's command tag (PostgreSQL `INSERT 0 1`, `SELECT 5`;
        /// MySQL `OK` or `ROWS`).
        tag: Cow<'a, str>,
        /// Rows returned (a result set) or affected.
        rows: u64,
        /// Bytes of the answer sent to the client.
        bytes: u64,
        /// The first rows of its result as the client saw them, when the
        /// sink asked for samples and it returned a result.
        sample: Option<Cow<'a, ResultSample>>,
    },
    /// The server failed it.
    Failed {
        /// PostgreSQL SQLSTATE, MySQL error number.
        code: String,
        /// The message the client received (scrubbed where masking hides
        /// values).
        message: String,
        /// Bytes of the answer sent to the client.
        bytes: u64,
    },
}

/// Where a relay reports how long each request took the server: from its
/// last message forwarded (a Query, a Sync, a MySQL command) to the end of
/// its answer (ReadyForQuery, the command's last packet).
pub type Timings = std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// Where a session's outcomes go.
pub trait OutcomeSink: Send + Sync + std::fmt::Debug {
    /// One outcome, in the order the server answered.
    fn outcome(&self, outcome: &Outcome<'_>);

    /// How much of each result to sample (none unless a sink asks).
    fn sample_limits(&self) -> SampleLimits {
        SampleLimits::default()
    }

    /// The session's traffic when its relay ends: bytes from the client
    /// and to it.
    fn traffic(&self, _from_client: u64, _to_client: u64) {}

    /// The server answered the oldest statement preparation the relay
    /// forwarded and had not seen answered (PostgreSQL: ParseComplete,
    /// `ok`; an error or a skip to Sync, not), under the name `name`.
    fn statement_prepared(&self, _name: &[u8], _ok: bool) {}

    /// The server dropped the unnamed statement (a refused Parse's marker
    /// failed in its place).
    fn unnamed_statement_dropped(&self) {}
}
