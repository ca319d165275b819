//! A session's records in a commit-ordered table: each names the one
//! before it (`before`), and `sessions.last` the newest, so a session is
//! read by following its thread back, one lookup by place per record,
//! and written without a per-session index that every commit would
//! touch (`schema.rs` says why).
//!
//! The thread is read from a file anyone with write access can edit, so
//! this module must never loop on it nor trust it to be whole: a place
//! that is missing, that names another session's record, or that does
//! not lead strictly backwards makes it read the session by a scan of
//! the whole table instead, which finds what the thread lost (verify then
//! reports the break, as it did when records were keyed by session).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{err, hash32};
use crate::store::{Kind, Row, StoreError};

/// The newest record of each session this writer is recording, by place.
#[derive(Default)]
pub(super) struct Newest {
    places: HashMap<String, i64>,
}

impl Newest {
    /// The place of `session`'s newest record: remembered, or read from
    /// its listing (a session this writer did not start has none cached).
    pub(super) fn of(&self, conn: &Connection, session: &str) -> Result<Option<i64>, StoreError> {
        match self.places.get(session) {
            Some(n) => Ok(Some(*n)),
            None => newest(conn, session),
        }
    }

    /// After a commit: the places it wrote are the newest; a session that
    /// ended is forgotten.
    pub(super) fn committed<'a>(
        &mut self,
        written: impl IntoIterator<Item = (&'a str, i64)>,
        ended: &[&str],
    ) {
        for (session, n) in written {
            match self.places.get_mut(session) {
                Some(place) => *place = n,
                None => {
                    self.places.insert(session.to_owned(), n);
                }
            }
        }
        for session in ended {
            self.places.remove(*session);
        }
    }
}

/// `session`'s records in `seq` order.
pub(super) fn rows(conn: &Connection, session: &str) -> Result<Vec<Row>, StoreError> {
    let mut at = newest(conn, session)?;
    let mut rows = Vec::new();
    let mut get = conn
        .prepare_cached(
            "SELECT session, seq, kind, at_us, body, prev, hash, before FROM records WHERE n = ?1",
        )
        .map_err(err)?;
    while let Some(n) = at {
        let found = get
            .query_row([n], |r| Ok((row_of(r)?, r.get::<_, Option<i64>>(7)?)))
            .optional()
            .map_err(err)?;
        match found {
            Some((row, before)) if row.session == session && before.is_none_or(|b| b < n) => {
                rows.push(row);
                at = before;
            }
            _ => return scanned(conn, session),
        }
    }
    if rows.is_empty() {
        // No listing, or one without a newest record: whatever the table
        // holds of it.
        return scanned(conn, session);
    }
    rows.reverse();
    // As a key on (session, seq) returned them: a reordering shows as
    // the chain's break, the same as before.
    rows.sort_by_key(|r| r.seq);
    Ok(rows)
}

/// The places of `session`'s records (for pruning it).
pub(super) fn places(conn: &Connection, session: &str) -> Result<Vec<i64>, StoreError> {
    let mut at = newest(conn, session)?;
    let mut places = Vec::new();
    let mut get = conn
        .prepare_cached("SELECT session = ?2, before FROM records WHERE n = ?1")
        .map_err(err)?;
    while let Some(n) = at {
        let found = get
            .query_row(params![n, session], |r| {
                Ok((r.get::<_, bool>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()
            .map_err(err)?;
        match found {
            Some((true, before)) if before.is_none_or(|b| b < n) => {
                places.push(n);
                at = before;
            }
            _ => return scanned_places(conn, session),
        }
    }
    // Records the thread does not reach (none, unless the file was
    // edited) stay, and verify counts them as strays.
    Ok(places)
}

/// The place of `session`'s newest record, as its listing says.
fn newest(conn: &Connection, session: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT last FROM sessions WHERE id = ?1")
        .map_err(err)?
        .query_row([session], |r| r.get::<_, Option<i64>>(0))
        .optional()
        .map(Option::flatten)
        .map_err(err)
}

fn scanned(conn: &Connection, session: &str) -> Result<Vec<Row>, StoreError> {
    let mut q = conn
        .prepare(
            "SELECT session, seq, kind, at_us, body, prev, hash FROM records WHERE session = ?1 ORDER BY seq, n",
        )
        .map_err(err)?;
    let rows = q.query_map([session], row_of).map_err(err)?;
    rows.collect::<Result<_, _>>().map_err(err)
}

fn scanned_places(conn: &Connection, session: &str) -> Result<Vec<i64>, StoreError> {
    let mut q = conn
        .prepare("SELECT n FROM records WHERE session = ?1")
        .map_err(err)?;
    let places = q.query_map([session], |r| r.get(0)).map_err(err)?;
    places.collect::<Result<_, _>>().map_err(err)
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let kind: String = r.get(2)?;
    let (kind, body) = Kind::read(&kind, crate::store::packed::unpack(r.get_ref(4)?));
    Ok(Row {
        session: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        kind,
        at_us: r.get(3)?,
        body,
        prev: hash32(r.get(5)?),
        hash: hash32(r.get(6)?),
    })
}
