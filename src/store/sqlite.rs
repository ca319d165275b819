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

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::checkpoint::{Anchor, Checkpoint};
use super::{Kind, Link, Row, SessionSummary, Store, StoreError};

mod follow;
mod schema;

pub use schema::Access;

/// A SQLite file.
pub struct SqliteStore {
    conn: Connection,
    /// Each recording session's newest record (the next one points at it).
    newest: follow::Newest,
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_for(path, Access::Write)
    }

    /// Opens (creating) the store at `path` for `access`: the gateway's
    /// writer migrates a store of the first form, a reader refuses it.
    pub fn open_for(path: &Path, access: Access) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        schema::prepare(&mut conn, access)?;
        Ok(SqliteStore {
            conn,
            newest: follow::Newest::default(),
        })
    }

    /// The connection, for tests that play the attacker.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// A record's place would pass the largest SQLite allows: only an edit
/// of the file numbers records so high.
fn past_the_largest_place() -> StoreError {
    StoreError::Backend(
        "the store's records are numbered past the largest place (edited)".to_owned(),
    )
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
        // Where each session's records went in this transaction, and the
        // sessions it ends (remembered once it commits). Places are given
        // here, after the table's last, never picked by SQLite (which
        // picks at random once the largest place is taken).
        let mut written: HashMap<&str, follow::Place> = HashMap::new();
        let mut ended: Vec<&str> = Vec::new();
        let mut next: i64 = tx
            .query_row("SELECT coalesce(max(n), 0) + 1 FROM records", [], |r| {
                r.get(0)
            })
            .map_err(|_| past_the_largest_place())?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO records (n, session, seq, kind, at_us, body, prev, hash, before) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(err)?;
            let mut start = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO sessions (id, user, target, started_us) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(err)?;
            let mut tally = tx
                .prepare_cached(
                    "UPDATE sessions SET statements = statements + ?2, refused = refused + ?3, last = coalesce(?4, last) WHERE id = ?1",
                )
                .map_err(err)?;
            let mut end = tx
                .prepare_cached("UPDATE sessions SET ended_us = ?2 WHERE id = ?1")
                .map_err(err)?;
            for r in rows {
                let before = match written.get(r.session.as_str()) {
                    Some(p) => Some(*p),
                    None => self.newest.of(&tx, &r.session)?,
                };
                // A session's records are stored once each, in order: a
                // retried group whose commit landed after all, or a
                // store edited meanwhile, is refused, not stored twice.
                let follows = before.map_or(0, |p| p.seq + 1);
                if r.seq != follows {
                    return Err(StoreError::Backend(format!(
                        "record {} of session {} does not follow the store's (it holds {follows} records of it)",
                        r.seq, r.session
                    )));
                }
                insert
                    .execute(params![
                        next,
                        r.session,
                        r.seq as i64,
                        r.kind.as_str(),
                        r.at_us,
                        super::packed::pack(&r.body),
                        &r.prev[..],
                        &r.hash[..],
                        before.map_or(0, |p| p.n)
                    ])
                    .map_err(err)?;
                written.insert(
                    &r.session,
                    follow::Place {
                        n: next,
                        seq: r.seq,
                    },
                );
                next = next.checked_add(1).ok_or_else(past_the_largest_place)?;
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
                        ended.push(&r.session);
                    }
                }
            }
            // Statements, refusals and the newest record per session, one
            // update each (few pages: listings are stored in the order
            // sessions started, so those recording now sit together).
            let mut tallies: HashMap<&str, (u64, u64)> = counts
                .iter()
                .map(|(s, statements, refused)| (s.as_str(), (*statements, *refused)))
                .collect();
            for (session, place) in &written {
                let (statements, refused) = tallies.remove(session).unwrap_or_default();
                tally
                    .execute(params![session, statements as i64, refused as i64, place.n])
                    .map_err(err)?;
            }
            for (session, (statements, refused)) in tallies {
                tally
                    .execute(params![
                        session,
                        statements as i64,
                        refused as i64,
                        None::<i64>
                    ])
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
        self.newest.committed(written, &ended);
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
        follow::rows(&self.conn, session)
    }

    fn record_count(&mut self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(err)
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
                 FROM links l LEFT JOIN sessions s ON s.id = l.session LEFT JOIN records r \
                 ON r.n = s.last AND r.session = l.session AND r.kind = 'session_end' AND r.hash = l.head \
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
        // Immediate: it reads the links before it deletes, and another
        // gateway on the file must not commit in between.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let through = anchor.link as i64;
        {
            let pruned: Vec<String> = tx
                .prepare("SELECT session FROM links WHERE n <= ?1")
                .map_err(err)?
                .query_map([through], |r| r.get(0))
                .map_err(err)?
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut delete = tx
                .prepare("DELETE FROM records WHERE n = ?1")
                .map_err(err)?;
            for session in &pruned {
                for n in follow::places(&tx, session)? {
                    delete.execute([n]).map_err(err)?;
                }
            }
        }
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
mod tests;
