//! What a statement came to, as a relay sees it in the server's answers:
//! done (its command tag and the rows it returned or affected) or failed
//! (the error's code and message as the client saw them). Relays report
//! outcomes in the order the server answers; recording and metrics
//! consume them. This module must never carry a row's values.

/// One statement's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It completed.
    Done {
        /// The server's command tag (PostgreSQL `INSERT 0 1`, `SELECT 5`;
        /// MySQL `OK` or `ROWS`).
        tag: String,
        /// Rows returned (a result set) or affected.
        rows: u64,
    },
    /// The server failed it.
    Failed {
        /// PostgreSQL SQLSTATE, MySQL error number.
        code: String,
        /// The message the client received (scrubbed where masking hides
        /// values).
        message: String,
    },
}

/// Where a session's outcomes go.
pub trait OutcomeSink: Send + Sync + std::fmt::Debug {
    /// One outcome, in the order the server answered.
    fn outcome(&self, outcome: Outcome);
}
