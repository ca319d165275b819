//! The SQLite store's tables, and the one migration from the first form.
//!
//! Why records are kept in commit order: the first form keyed them by
//! `(session, seq)`, so every group commit dirtied one leaf of that key
//! per session in the group (33.5 pages of 4 KiB a commit for 16 busy
//! sessions, against 11.4 without it), each written twice (WAL, then
//! checkpoint): most of the recorder's CPU. Now `records` is appended to
//! at its end only, each record names its session's record before it
//! (`before`), and `sessions.last` names the newest one, updated with the
//! statement counts a commit already writes there.
//!
//! `before` is NOT NULL (0 for a session's first record): a gateway of the
//! first form still writing to a migrated file fails loudly at its first
//! insert instead of adding records no thread reaches.
//!
//! This module must never leave a store half migrated (the migration is
//! one transaction), never migrate from a command that only reads (a
//! gateway of the first form may still be writing: it is the new
//! gateway's start that migrates), and never read a store of a newer form.

use rusqlite::{Connection, OptionalExtension};

use super::err;
use crate::store::StoreError;

/// The form this build writes (`PRAGMA user_version`): 0 was keyed by
/// `(session, seq)`, 1 is in commit order.
const FORM: i64 = 1;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS records (
    n INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL,
    before INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    n INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    records INTEGER NOT NULL,
    head BLOB NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    target TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    ended_us INTEGER,
    statements INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    last INTEGER
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started_us);
CREATE TABLE IF NOT EXISTS anchor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    link INTEGER NOT NULL,
    hash BLOB NOT NULL,
    cutoff_us INTEGER NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    n INTEGER PRIMARY KEY,
    link INTEGER NOT NULL,
    link_hash BLOB NOT NULL,
    at_us INTEGER NOT NULL,
    signature BLOB NOT NULL
);
";

/// The first form's records, renamed aside before `TABLES` makes the new
/// ones, become commit-ordered ones: each session's records in a run, in
/// `seq` order, each pointing at the one before it in its run; each
/// session's newest is its `last`.
const FROM_FORM_0: &str = "
INSERT INTO records (n, session, seq, kind, at_us, body, prev, hash, before)
    SELECT place, session, seq, kind, at_us, body, prev, hash,
           CASE WHEN session_before = session THEN place - 1 ELSE 0 END
    FROM (SELECT *,
                 row_number() OVER (ORDER BY session, seq) AS place,
                 lag(session) OVER (ORDER BY session, seq) AS session_before
          FROM records_form_0);
DROP TABLE records_form_0;
ALTER TABLE sessions ADD COLUMN last INTEGER;
UPDATE sessions SET last = newest.n
    FROM (SELECT session, max(n) AS n FROM records GROUP BY session) AS newest
    WHERE newest.session = sessions.id;
";

/// Who opens the store: the gateway's writer brings a store of the
/// first form to this one; a command that only reads refuses it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Write,
    Read,
}

/// Creates the tables, or brings a store of the first form to this one.
pub(super) fn prepare(conn: &mut Connection, access: Access) -> Result<(), StoreError> {
    // Read first without the write lock: a store already in this form
    // (every open but the first) takes no lock from the writer.
    if form(conn)? == FORM {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let form = form(&tx)?;
    if form > FORM {
        return Err(StoreError::Backend(format!(
            "the store is of form {form}, written by a newer sqlgate (this one reads up to {FORM})"
        )));
    }
    if form < FORM {
        let first_form = tx
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'",
                [],
                |_| Ok(()),
            )
            .optional()
            .map_err(err)?
            .is_some();
        if first_form {
            if access == Access::Read {
                return Err(StoreError::Backend(
                    "the store is of the first form (records keyed by session): start this version's gateway once to bring it to the new form, or read it with the sqlgate that wrote it".to_owned(),
                ));
            }
            tracing::info!("recording: the store's records are put in commit order (once)");
            tx.execute_batch("ALTER TABLE records RENAME TO records_form_0")
                .map_err(err)?;
        }
        tx.execute_batch(TABLES).map_err(err)?;
        if first_form {
            tx.execute_batch(FROM_FORM_0).map_err(err)?;
        }
        tx.pragma_update(None, "user_version", FORM).map_err(err)?;
    }
    tx.commit().map_err(err)
}

fn form(conn: &Connection) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)
}
