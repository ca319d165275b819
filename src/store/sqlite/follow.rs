//! A session's records in a commit-ordered table: each names the one
//! before it (`before`, 0 for a session's first), and `sessions.last`
//! the newest, so a session is read by following its thread back, one
//! lookup by place per record, and written without a per-session index
//! that every commit would touch (`schema.rs` says why).
//!
//! The thread is read from a file anyone with write access can edit, so
//! this module must never loop on it nor trust it to be whole: it stops
//! at a place that is missing, that names another session's record, or
//! that does not lead strictly backwards, and returns what it reached.
//! It never falls back to scanning the table (one edit would make every
//! read a scan): `audit verify` reports the records the thread lost (a
//! gap in `seq`, or records no session's rows include).

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::{err, hash32};
use crate::store::{Kind, Row, StoreError};

/// A place in the thread: a record's `n` and its `seq`.
#[derive(Clone, Copy)]
pub(super) struct Place {
    pub n: i64,
    pub seq: u64,
}

/// The newest record of each session this writer is recording.
#[derive(Default)]
pub(super) struct Newest {
    places: HashMap<String, Place>,
}

impl Newest {
    /// `session`'s newest record: remembered, or read from its listing
    /// (a session this writer did not start has none remembered).
    pub(super) fn of(&self, conn: &Connection, session: &str) -> Result<Option<Place>, StoreError> {
        if let Some(p) = self.places.get(session) {
            return Ok(Some(*p));
        }
        let Some(n) = newest(conn, session)? else {
            return Ok(None);
        };
        let seq = conn
            .prepare_cached("SELECT seq FROM records WHERE n = ?1 AND session = ?2")
            .map_err(err)?
            .query_row(params![n, session], |r| r.get::<_, i64>(0))
            .optional()
            .map_err(err)?;
        match seq {
            Some(seq) => Ok(Some(Place { n, seq: seq as u64 })),
            None => Err(StoreError::Backend(format!(
                "session {session}'s newest record ({n}) is not in the store: it was edited"
            ))),
        }
    }

    /// After a commit: the places it wrote are the newest; a session that
    /// ended is forgotten.
    pub(super) fn committed<'a>(
        &mut self,
        written: impl IntoIterator<Item = (&'a str, Place)>,
        ended: &[&str],
    ) {
        for (session, place) in written {
            match self.places.get_mut(session) {
                Some(p) => *p = place,
                None => {
                    self.places.insert(session.to_owned(), place);
                }
            }
        }
        for session in ended {
            self.places.remove(*session);
        }
    }
}

/// `session`'s records that its thread reaches, in `seq` order.
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
            .query_row([n], |r| Ok((row_of(r)?, integer(r.get_ref(7)?))))
            .optional()
            .map_err(err)?;
        match found {
            Some((row, before)) if row.session == session => {
                rows.push(row);
                at = back(n, before);
            }
            _ => break,
        }
    }
    rows.reverse();
    // As a key on (session, seq) returned them: a reordering shows as
    // the chain's break, the same as before.
    rows.sort_by_key(|r| r.seq);
    Ok(rows)
}

/// The places of `session`'s records that its thread reaches (for
/// pruning it; records no thread reaches stay, and verify reports them).
pub(super) fn places(conn: &Connection, session: &str) -> Result<Vec<i64>, StoreError> {
    let mut at = newest(conn, session)?;
    let mut places = Vec::new();
    let mut get = conn
        .prepare_cached("SELECT session = ?2, before FROM records WHERE n = ?1")
        .map_err(err)?;
    while let Some(n) = at {
        let found = get
            .query_row(params![n, session], |r| {
                Ok((r.get::<_, bool>(0)?, integer(r.get_ref(1)?)))
            })
            .optional()
            .map_err(err)?;
        match found {
            Some((true, before)) => {
                places.push(n);
                at = back(n, before);
            }
            _ => break,
        }
    }
    Ok(places)
}

/// Where the thread goes from `n`: strictly backwards, or nowhere (0 is
/// a session's first record; anything else ends the walk).
fn back(n: i64, before: Option<i64>) -> Option<i64> {
    before.filter(|b| *b > 0 && *b < n)
}

/// An integer column, or `None` for anything else an edit left there.
fn integer(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

/// The place of `session`'s newest record, as its listing says.
fn newest(conn: &Connection, session: &str) -> Result<Option<i64>, StoreError> {
    let mut q = conn
        .prepare_cached("SELECT last FROM sessions WHERE id = ?1")
        .map_err(err)?;
    let last = q
        .query_row([session], |r| Ok(integer(r.get_ref(0)?)))
        .optional()
        .map_err(err)?;
    Ok(last.flatten())
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
