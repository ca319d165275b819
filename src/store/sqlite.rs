//! The embedded store: one SQLite file (WAL, `synchronous = FULL`: a
//! committed group survives a crash or power loss). sled, named in the
//! brief, is not used: its own README calls it beta and points to SQLite
//! where reliability matters, and its last stable release is years old.
//!
//! A long record body is stored compressed (`packed.rs`); the chain
//! hashes the body as written, so readers see no difference.
//!
//! Only the writer thread writes; the CLI reads the same file. This module
//! must never commit rows without their links' transaction.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::checkpoint::{Anchor, Checkpoint};
use super::{Kind, Link, Row, SessionSummary, Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    session TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (session, seq)
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
    refused INTEGER NOT NULL DEFAULT 0
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

/// A SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteStore { conn })
    }

    /// The connection, for tests that play the attacker.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn hash32(v: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}

impl Store for SqliteStore {
    fn append(
        &mut self,
        rows: &[Row],
        links: &mut [Link],
        counts: &[(String, u64, u64)],
    ) -> Result<Option<Link>, StoreError> {
        // Immediate: the last link read is still the last when the new
        // ones are written (another process may hold the file).
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut last = None;
        if !links.is_empty() {
            let after = tx
                .query_row(
                    "SELECT n, session, records, head, prev, hash FROM links ORDER BY n DESC LIMIT 1",
                    [],
                    link_of,
                )
                .optional()
                .map_err(err)?;
            // Pruned whole: the chain goes on from its anchor.
            let after = match after {
                Some(l) => Some(l),
                None => tx
                    .query_row("SELECT link, hash FROM anchor WHERE id = 1", [], |r| {
                        Ok(super::chain::anchor_link(
                            r.get::<_, i64>(0)? as u64,
                            hash32(r.get(1)?),
                        ))
                    })
                    .optional()
                    .map_err(err)?,
            };
            last = super::chain::rechain(links, after);
        }
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records (session, seq, kind, at_us, body, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            let mut start = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO sessions (id, user, target, started_us) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            let mut tally = tx
                .prepare_cached(
                    "UPDATE sessions SET statements = statements + ?2, refused = refused + ?3 WHERE id = ?1",
                )
                .map_err(err)?;
            let mut end = tx
                .prepare_cached("UPDATE sessions SET ended_us = ?2 WHERE id = ?1")
                .map_err(err)?;
            for r in rows {
                insert
                    .execute(params![
                        r.session,
                        r.seq as i64,
                        r.kind.as_str(),
                        r.at_us,
                        super::packed::pack(&r.body),
                        &r.prev[..],
                        &r.hash[..]
                    ])
                    .map_err(err)?;
                match r.kind {
                    Kind::SessionStart => {
                        let s: super::SessionStart = serde_json::from_str(&r.body)
                            .map_err(|e| StoreError::Backend(e.to_string()))?;
                        start
                            .execute(params![r.session, s.user, s.target, r.at_us])
                            .map_err(err)?;
                    }
                    Kind::Statement
                    | Kind::Outcome
                    | Kind::Connected
                    | Kind::Approval
                    | Kind::Definition
                    | Kind::Events => {}
                    Kind::SessionEnd => {
                        end.execute(params![r.session, r.at_us]).map_err(err)?;
                    }
                }
            }
            // Statements and refusals per session, one update each.
            for (session, statements, refused) in counts {
                tally
                    .execute(params![session, *statements as i64, *refused as i64])
                    .map_err(err)?;
            }
            let mut link = tx
                .prepare_cached(
                    "INSERT INTO links (n, session, records, head, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for l in links {
                link.execute(params![
                    l.n as i64,
                    l.session,
                    l.records as i64,
                    &l.head[..],
                    &l.prev[..],
                    &l.hash[..]
                ])
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(last)
    }

    fn last_link(&mut self) -> Result<Option<Link>, StoreError> {
        self.conn
            .query_row(
                "SELECT n, session, records, head, prev, hash FROM links ORDER BY n DESC LIMIT 1",
                [],
                link_of,
            )
            .optional()
            .map_err(err)
    }

    fn sessions(&mut self) -> Result<Vec<SessionSummary>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT id, user, target, started_us, ended_us, statements, refused FROM sessions ORDER BY started_us DESC",
            )
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok(SessionSummary {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    target: r.get(2)?,
                    started_us: r.get(3)?,
                    ended_us: r.get(4)?,
                    statements: r.get::<_, i64>(5)? as u64,
                    refused: r.get::<_, i64>(6)? as u64,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn rows(&mut self, session: &str) -> Result<Vec<Row>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT session, seq, kind, at_us, body, prev, hash FROM records WHERE session = ?1 ORDER BY seq",
            )
            .map_err(err)?;
        let rows = q
            .query_map([session], |r| {
                let kind: String = r.get(2)?;
                let (kind, body) = Kind::read(&kind, super::packed::unpack(r.get_ref(4)?));
                Ok(Row {
                    session: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    kind,
                    at_us: r.get(3)?,
                    body,
                    prev: hash32(r.get(5)?),
                    hash: hash32(r.get(6)?),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn session_ids(&mut self) -> Result<Vec<String>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT DISTINCT session FROM records ORDER BY session")
            .map_err(err)?;
        let rows = q.query_map([], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn add_checkpoint(
        &mut self,
        sign: &dyn Fn(u64) -> Checkpoint,
    ) -> Result<Checkpoint, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let n: Option<i64> = tx
            .query_row("SELECT max(n) FROM checkpoints", [], |r| r.get(0))
            .map_err(err)?;
        let cp = sign(n.map_or(0, |n| n as u64 + 1));
        tx.execute(
            "INSERT INTO checkpoints (n, link, link_hash, at_us, signature) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![cp.n as i64, cp.link as i64, &cp.link_hash[..], cp.at_us, cp.signature],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(cp)
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT n, link, link_hash, at_us, signature FROM checkpoints ORDER BY n")
            .map_err(err)?;
        let rows = q.query_map([], checkpoint_of).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    // When a session ended is read from its own (hashed) end record,
    // the one its link names, not from the listing table.
    fn prunable(&mut self, cutoff_us: i64) -> Result<Option<Link>, StoreError> {
        let mut q = self
            .conn
            .prepare(
                "SELECT l.n, l.session, l.records, l.head, l.prev, l.hash, r.at_us \
                 FROM links l LEFT JOIN records r \
                 ON r.session = l.session AND r.kind = 'session_end' AND r.hash = l.head \
                 ORDER BY l.n",
            )
            .map_err(err)?;
        let mut rows = q.query([]).map_err(err)?;
        let mut last = None;
        while let Some(r) = rows.next().map_err(err)? {
            let ended: Option<i64> = r.get(6).map_err(err)?;
            if ended.is_none_or(|e| e >= cutoff_us) {
                break;
            }
            last = Some(link_of(r).map_err(err)?);
        }
        Ok(last)
    }

    fn prune(&mut self, anchor: &Anchor) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(err)?;
        let through = anchor.link as i64;
        tx.execute(
            "DELETE FROM records WHERE session IN (SELECT session FROM links WHERE n <= ?1)",
            [through],
        )
        .map_err(err)?;
        tx.execute(
            "DELETE FROM sessions WHERE id IN (SELECT session FROM links WHERE n <= ?1)",
            [through],
        )
        .map_err(err)?;
        tx.execute("DELETE FROM links WHERE n <= ?1", [through])
            .map_err(err)?;
        tx.execute("DELETE FROM checkpoints WHERE link <= ?1", [through])
            .map_err(err)?;
        tx.execute(
            "INSERT INTO anchor (id, link, hash, cutoff_us, signature) VALUES (1, ?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET link = excluded.link, hash = excluded.hash, \
             cutoff_us = excluded.cutoff_us, signature = excluded.signature \
             WHERE anchor.link < excluded.link",
            params![
                through,
                &anchor.hash[..],
                anchor.cutoff_us,
                anchor.signature
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    fn anchor(&mut self) -> Result<Option<Anchor>, StoreError> {
        self.conn
            .query_row(
                "SELECT link, hash, cutoff_us, signature FROM anchor WHERE id = 1",
                [],
                |r| {
                    Ok(Anchor {
                        link: r.get::<_, i64>(0)? as u64,
                        hash: hash32(r.get(1)?),
                        cutoff_us: r.get(2)?,
                        signature: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(err)
    }

    // A read transaction: WAL readers see the database as of its first
    // read until it ends.
    fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN DEFERRED").map_err(err)
    }

    fn end_snapshot(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            err(e)
        })
    }

    fn links(&mut self) -> Result<Vec<Link>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT n, session, records, head, prev, hash FROM links ORDER BY n")
            .map_err(err)?;
        let rows = q.query_map([], link_of).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

fn checkpoint_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        n: r.get::<_, i64>(0)? as u64,
        link: r.get::<_, i64>(1)? as u64,
        link_hash: hash32(r.get(2)?),
        at_us: r.get(3)?,
        signature: r.get(4)?,
    })
}

fn link_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Link> {
    Ok(Link {
        n: r.get::<_, i64>(0)? as u64,
        session: r.get(1)?,
        records: r.get::<_, i64>(2)? as u64,
        head: hash32(r.get(3)?),
        prev: hash32(r.get(4)?),
        hash: hash32(r.get(5)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link and the one record it covers, for session `s`.
    fn ended(s: &str) -> (Row, Link) {
        let hash = super::super::chain::row_hash(&[0; 32], s, 0, Kind::SessionEnd, 1, "{}");
        let row = Row {
            session: s.to_owned(),
            seq: 0,
            kind: Kind::SessionEnd,
            at_us: 1,
            body: "{}".to_owned(),
            prev: [0; 32],
            hash,
        };
        let link = Link {
            n: 0,
            session: s.to_owned(),
            records: 1,
            head: hash,
            prev: [0; 32],
            hash: [0; 32],
        };
        (row, link)
    }

    #[test]
    fn a_snapshot_does_not_see_what_another_writer_appends_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut reader = SqliteStore::open(&path).unwrap();
        let mut writer = SqliteStore::open(&path).unwrap();
        let (row, link) = ended("a");
        writer.append(&[row], &mut [link], &[]).unwrap();
        reader.begin_snapshot().unwrap();
        assert_eq!(reader.links().unwrap().len(), 1);
        let (row, link) = ended("b");
        // Chained after the file's last link, whatever it was given.
        let last = writer.append(&[row], &mut [link], &[]).unwrap().unwrap();
        assert_eq!(last.n, 1);
        assert_eq!(reader.links().unwrap().len(), 1, "inside the snapshot");
        assert_eq!(reader.session_ids().unwrap(), ["a"]);
        reader.end_snapshot().unwrap();
        assert_eq!(reader.links().unwrap().len(), 2);
    }
}
