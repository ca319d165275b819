//! Tamper evidence: every record carries the hash of its session's
//! previous record, and every ended session's last hash is linked into a
//! gateway-wide chain, so that an edited, deleted, reordered or cut record
//! breaks a link [`verify`] finds. (Whoever can write the store can
//! recompute the whole chain; signed checkpoints close that gap.)
//!
//! The hash input is length-prefixed and versioned: two different rows
//! never hash the same bytes. This module must never change what an
//! existing version hashes.

use sha2::{Digest, Sha256};

use super::checkpoint::PublicKey;
use super::{Kind, Store, StoreError};

/// The hash of a row, given its fields and its predecessor's hash.
pub fn row_hash(
    prev: &[u8; 32],
    session: &str,
    seq: u64,
    kind: Kind,
    at_us: i64,
    body: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sqlgate-row-v1");
    h.update(prev);
    put(&mut h, session.as_bytes());
    h.update(seq.to_be_bytes());
    put(&mut h, kind.as_str().as_bytes());
    h.update(at_us.to_be_bytes());
    put(&mut h, body.as_bytes());
    h.finalize().into()
}

/// The hash of a link of the gateway-wide chain.
pub fn link_hash(
    prev: &[u8; 32],
    n: u64,
    session: &str,
    records: u64,
    head: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"sqlgate-link-v1");
    h.update(prev);
    h.update(n.to_be_bytes());
    put(&mut h, session.as_bytes());
    h.update(records.to_be_bytes());
    h.update(head);
    h.finalize().into()
}

fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// What kind of break a link shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// A record's content does not match its hash (edited).
    Edited,
    /// A record is missing from its session (deleted), or records are
    /// out of order.
    Missing,
    /// A record's predecessor hash does not match (reordered or replaced).
    Relinked,
    /// A session's records do not end where its link says (cut or
    /// extended).
    Cut,
    /// A link of the gateway-wide chain is missing, edited or reordered.
    Chain,
    /// A link names a session that has no records (deleted whole).
    SessionGone,
    /// An ended session has no link (its link was removed).
    Unlinked,
    /// A checkpoint's signature is not the key's, or the link it signed
    /// is no longer the chain's (the chain was recomputed or cut).
    Checkpoint,
    /// The retention anchor's signature is not the key's (a prefix of
    /// the chain was cut by someone else than the gateway).
    Anchor,
    /// The store holds records that no session's rows include (added,
    /// or a session's thread of records rewired around them).
    Stray,
}

/// The first broken link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The session (or chain link) where it is.
    pub session: String,
    /// The record's place (or the link's).
    pub seq: u64,
    /// What broke.
    pub what: Break,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Sessions whose records verify.
    pub sessions: u64,
    /// Records verified.
    pub records: u64,
    /// Links verified.
    pub links: u64,
    /// Sessions not ended yet (or whose gateway stopped before their end
    /// was recorded): their records verify, no link covers them.
    pub open: Vec<String>,
    /// Checkpoints whose signatures verified (0 without a public key).
    pub signed: u64,
    /// The last link a verified signature covers.
    pub signed_through: Option<u64>,
    /// The last link retention pruned.
    pub pruned_through: Option<u64>,
    /// The first break, if any.
    pub broken: Option<Finding>,
}

/// Walks the whole trail; with a public key, every checkpoint's
/// signature too.
pub fn verify(store: &mut dyn Store, public: Option<&PublicKey>) -> Result<Report, StoreError> {
    // One snapshot: another gateway appending meanwhile must not look like
    // a session cut or gone.
    store.begin_snapshot()?;
    let report = walk(store, public);
    // Ended even when the walk failed (a snapshot left open would keep
    // the writer's own connection from committing).
    let ended = store.end_snapshot();
    let report = report?;
    ended?;
    Ok(report)
}

fn walk(store: &mut dyn Store, public: Option<&PublicKey>) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let mut heads = std::collections::HashMap::new();
    for session in store.session_ids()? {
        let rows = store.rows(&session)?;
        let mut prev = [0u8; 32];
        let mut ended = false;
        for (i, row) in rows.iter().enumerate() {
            let brk = |what| Finding {
                session: session.clone(),
                seq: row.seq,
                what,
            };
            if row.seq != i as u64 {
                report.broken = Some(brk(Break::Missing));
                return Ok(report);
            }
            if row.prev != prev {
                report.broken = Some(brk(Break::Relinked));
                return Ok(report);
            }
            let hash = row_hash(
                &row.prev,
                &row.session,
                row.seq,
                row.kind,
                row.at_us,
                &row.body,
            );
            if hash != row.hash {
                report.broken = Some(brk(Break::Edited));
                return Ok(report);
            }
            prev = row.hash;
            ended = row.kind == Kind::SessionEnd;
            report.records += 1;
        }
        heads.insert(session.clone(), (rows.len() as u64, prev, ended));
        report.sessions += 1;
    }
    // After retention the chain starts past its anchor.
    let anchor = store.anchor()?;
    if let (Some(a), Some(public)) = (&anchor, public) {
        if !public.verifies_anchor(a) {
            report.broken = Some(Finding {
                session: "retention anchor".to_owned(),
                seq: a.link,
                what: Break::Anchor,
            });
            return Ok(report);
        }
    }
    let (start, mut prev) = anchor
        .as_ref()
        .map_or((0, [0u8; 32]), |a| (a.link + 1, a.hash));
    report.pruned_through = anchor.as_ref().map(|a| a.link);
    let links = store.links()?;
    for (i, link) in links.iter().enumerate() {
        let brk = |what| Finding {
            session: link.session.clone(),
            seq: link.n,
            what,
        };
        let hash = link_hash(&link.prev, link.n, &link.session, link.records, &link.head);
        if link.n != start + i as u64 || link.prev != prev || hash != link.hash {
            report.broken = Some(brk(Break::Chain));
            return Ok(report);
        }
        match heads.remove(&link.session) {
            None => {
                report.broken = Some(brk(Break::SessionGone));
                return Ok(report);
            }
            Some((records, head, _)) if records != link.records || head != link.head => {
                report.broken = Some(brk(Break::Cut));
                return Ok(report);
            }
            Some(_) => {}
        }
        prev = link.hash;
        report.links += 1;
    }
    let mut open: Vec<(String, bool)> = heads
        .into_iter()
        .map(|(s, (_, _, ended))| (s, ended))
        .collect();
    open.sort();
    if let Some((session, _)) = open.iter().find(|(_, ended)| *ended) {
        report.broken = Some(Finding {
            session: session.clone(),
            seq: 0,
            what: Break::Unlinked,
        });
        return Ok(report);
    }
    report.open = open.into_iter().map(|(s, _)| s).collect();
    // Last of the records' checks, so that a session's own break is named
    // first: records its rows do not include (a store that finds a
    // session's records by a thread of references can lose some).
    let stored = store.record_count()?;
    if stored != report.records {
        // No session to name: `seq` says how many records are astray.
        report.broken = Some(Finding {
            session: String::new(),
            seq: stored.abs_diff(report.records),
            what: Break::Stray,
        });
        return Ok(report);
    }
    if let Some(public) = public {
        let checkpoints = store.checkpoints()?;
        let first = checkpoints.first().map_or(0, |c| c.n);
        for (i, cp) in checkpoints.iter().enumerate() {
            let signed_link = cp
                .link
                .checked_sub(start)
                .and_then(|k| links.get(k as usize))
                .map(|l| l.hash);
            if cp.n != first + i as u64 || !public.verifies(cp) || signed_link != Some(cp.link_hash)
            {
                report.broken = Some(Finding {
                    session: format!("checkpoint {}", cp.n),
                    seq: cp.link,
                    what: Break::Checkpoint,
                });
                return Ok(report);
            }
            report.signed += 1;
            report.signed_through = Some(cp.link);
        }
    }
    Ok(report)
}

/// The link retention's anchor stands for (the last one pruned): only
/// its number and hash matter to what is chained after it.
pub fn anchor_link(n: u64, hash: [u8; 32]) -> super::Link {
    super::Link {
        n,
        session: String::new(),
        records: 0,
        head: [0; 32],
        prev: [0; 32],
        hash,
    }
}

/// Chains `links` (in order) after `last`: their numbers, predecessors
/// and hashes follow from it, whatever they were computed from.
pub fn rechain(links: &mut [super::Link], mut last: Option<super::Link>) -> Option<super::Link> {
    for l in links.iter_mut() {
        let (n, prev) = match &last {
            Some(p) => (p.n + 1, p.hash),
            None => (0, [0; 32]),
        };
        l.n = n;
        l.prev = prev;
        l.hash = link_hash(&prev, n, &l.session, l.records, &l.head);
        last = Some(l.clone());
    }
    last
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::writer::{OnFailure, Recorder};
    use crate::store::{SessionStart, StatementEvent};

    /// A session's start, for tests of the store.
    pub(in crate::store) fn start(user: &str) -> SessionStart {
        SessionStart {
            instance: "test".into(),
            user: user.into(),
            groups: vec![],
            auth: "password".into(),
            client: "127.0.0.1:1".into(),
            tls: false,
            target: "app".into(),
            protocol: "postgres".into(),
        }
    }

    /// Records a statement durably and waits for its commit.
    fn durable(s: &crate::store::session::SessionRecorder, text: &str) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(s.statement_durable(&statement(text)))
            .unwrap();
    }

    /// A statement event, for tests of the store.
    pub(in crate::store) fn statement(text: &str) -> StatementEvent {
        StatementEvent {
            parameters: None,
            rule: None,
            masked_columns: Vec::new(),
            origin: "query".into(),
            text: text.into(),
            fingerprint: text.to_lowercase(),
            verdict: "allow".into(),
            tags: vec!["write.insert".into()],
            refusal: None,
            masked: false,
        }
    }

    /// A trail of three ended sessions and one open one; the ids.
    pub(in crate::store) fn trail(path: &std::path::Path) -> Vec<String> {
        let store = SqliteStore::open(path).unwrap();
        let rec = Recorder::start(
            Box::new(store),
            std::time::Duration::from_millis(5),
            OnFailure::Refuse,
            "test",
            Some((
                crate::store::checkpoint::Key::read(&key_file()).unwrap(),
                std::time::Duration::from_secs(3600),
            )),
            None,
        )
        .unwrap();
        let mut ids = Vec::new();
        for user in ["ann", "bob", "cid"] {
            let mut s = rec.session(&start(user));
            for i in 0..3 {
                let text = format!("INSERT INTO t VALUES ({i}, '{user}')");
                if i == 1 {
                    durable(&s, &text);
                } else {
                    s.statement(&statement(&text));
                }
            }
            s.end("closed");
            ids.push(s.id().to_owned());
        }
        let open = rec.session(&start("dan"));
        durable(&open, "SELECT 1");
        rec.flush();
        std::mem::forget(open);
        ids
    }

    /// The test's signing key (and its public key beside it).
    fn key_file() -> std::path::PathBuf {
        // Made once per test process (tests run in parallel).
        static KEY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        KEY.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("sqlgate-chain-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let key = crate::store::checkpoint::Key::generate();
            std::fs::write(dir.join("audit.pub"), key.public_text()).unwrap();
            std::fs::write(dir.join("audit.key"), key.to_file_text()).unwrap();
            dir.join("audit.key")
        })
        .clone()
    }

    pub(in crate::store) fn public() -> PublicKey {
        key_file();
        PublicKey::read(&key_file().with_file_name("audit.pub")).unwrap()
    }

    /// An attacker's edit of the store's tables.
    type Tamper<'a> = Box<dyn FnOnce(&rusqlite::Connection, &[String]) + 'a>;

    fn verify_after(tamper: impl FnOnce(&rusqlite::Connection, &[String])) -> Option<Finding> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let ids = trail(&path);
        let mut store = SqliteStore::open(&path).unwrap();
        tamper(store.connection(), &ids);
        verify(&mut store, Some(&public())).unwrap().broken
    }

    #[test]
    fn an_untouched_trail_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        trail(&path);
        let mut store = SqliteStore::open(&path).unwrap();
        let r = verify(&mut store, Some(&public())).unwrap();
        assert_eq!(r.broken, None);
        assert_eq!((r.sessions, r.links, r.open.len()), (4, 3, 1));
        assert_eq!((r.signed, r.signed_through), (1, Some(2)));
        // Another key's signature is not this one's.
        let other = crate::store::checkpoint::Key::generate();
        let other_pub = dir.path().join("other.pub");
        std::fs::write(&other_pub, other.public_text()).unwrap();
        let r = verify(&mut store, Some(&PublicKey::read(&other_pub).unwrap())).unwrap();
        assert_eq!(r.broken.map(|b| b.what), Some(Break::Checkpoint));
        // Each ended session: its start, two groups of events (the
        // durable statement committed the first), its end; the open one:
        // its start and one group.
        assert_eq!(r.records, 3 * 4 + 2);
    }

    #[test]
    fn retention_prunes_ended_sessions_and_what_remains_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let start_recorder = || {
            Recorder::start(
                Box::new(SqliteStore::open(&path).unwrap()),
                std::time::Duration::from_millis(5),
                OnFailure::Refuse,
                "test",
                Some((
                    crate::store::checkpoint::Key::read(&key_file()).unwrap(),
                    std::time::Duration::from_secs(3600),
                )),
                // Everything ended is old enough.
                Some(std::time::Duration::from_micros(1)),
            )
            .unwrap()
        };
        let rec = start_recorder();
        for user in ["ann", "bob"] {
            let mut s = rec.session(&start(user));
            durable(&s, "INSERT INTO t VALUES (1)");
            s.end("closed");
        }
        rec.flush();
        drop(rec);
        // A gateway started later prunes at its first commit (then
        // hourly): the sessions that ended before it.
        let rec = start_recorder();
        let mut kept = rec.session(&start("cid"));
        durable(&kept, "SELECT 1");
        kept.end("closed");
        let kept_id = kept.id().to_owned();
        rec.flush();
        let mut store = SqliteStore::open(&path).unwrap();
        let ids = store.session_ids().unwrap();
        assert_eq!(ids, vec![kept_id]);
        let r = verify(&mut store, Some(&public())).unwrap();
        assert_eq!(r.broken, None);
        assert_eq!((r.pruned_through, r.links), (Some(1), 1));
        assert!(r.signed_through.is_some());
        // The anchor is the gateway's: one made by someone else does not
        // verify, and without it the chain does not start where it says.
        store
            .connection()
            .execute("UPDATE anchor SET cutoff_us = cutoff_us + 1", [])
            .unwrap();
        let r = verify(&mut store, Some(&public())).unwrap();
        assert_eq!(r.broken.map(|b| b.what), Some(Break::Anchor));
        store
            .connection()
            .execute("DELETE FROM anchor", [])
            .unwrap();
        let r = verify(&mut store, None).unwrap();
        assert_eq!(r.broken.map(|b| b.what), Some(Break::Chain));
    }

    #[test]
    fn a_gateway_never_signs_over_a_trail_edited_while_it_was_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        trail(&path);
        let store = SqliteStore::open(&path).unwrap();
        let signed_before = SqliteStore::open(&path)
            .unwrap()
            .checkpoints()
            .unwrap()
            .len();
        store
            .connection()
            .execute("UPDATE records SET body = replace(body, 'bob', 'eve')", [])
            .unwrap();
        let rec = Recorder::start(
            Box::new(store),
            std::time::Duration::from_millis(5),
            OnFailure::Refuse,
            "test",
            Some((
                crate::store::checkpoint::Key::read(&key_file()).unwrap(),
                std::time::Duration::from_secs(3600),
            )),
            None,
        )
        .unwrap();
        let mut s = rec.session(&start("fay"));
        durable(&s, "SELECT 1");
        s.end("closed");
        rec.flush();
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.checkpoints().unwrap().len(), signed_before);
        assert!(verify(&mut store, Some(&public()))
            .unwrap()
            .broken
            .is_some());
    }

    /// A statement record whose kind column is made unreadable must not
    /// read back as the statement it was (which would verify).
    #[test]
    fn a_statement_given_an_unknown_kind_no_longer_matches_its_hash() {
        let body = "{\"d\":0,\"text\":\"SELECT 1\"}".to_owned();
        let hash = row_hash(&[0; 32], "s", 1, Kind::Statement, 5, &body);
        let (kind, read) = Kind::read("junk", body.clone());
        assert_ne!(row_hash(&[0; 32], "s", 1, kind, 5, &read), hash);
        assert!(read.starts_with("(a record of an unknown kind \"junk\")"));
        assert_eq!(
            Kind::read("statement", body.clone()),
            (Kind::Statement, body)
        );
    }

    #[test]
    fn every_kind_of_tampering_is_found() {
        let exec = |c: &rusqlite::Connection, sql: &str, id: &str| {
            c.execute(sql, [id]).unwrap();
        };
        let cases: Vec<(&str, Tamper<'_>, Break)> = vec![
            (
                "edit a statement's text",
                Box::new(|c, ids| {
                    exec(c, "UPDATE records SET body = replace(body, 'ann', 'eve') WHERE session = ?1 AND seq = 2", &ids[0])
                }),
                Break::Edited,
            ),
            (
                "delete a record",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "DELETE FROM records WHERE session = ?1 AND seq = 2",
                        &ids[1],
                    )
                }),
                Break::Missing,
            ),
            (
                "swap two records",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "UPDATE records SET seq = -1 WHERE session = ?1 AND seq = 1",
                        &ids[1],
                    );
                    exec(
                        c,
                        "UPDATE records SET seq = 1 WHERE session = ?1 AND seq = 2",
                        &ids[1],
                    );
                    exec(
                        c,
                        "UPDATE records SET seq = 2 WHERE session = ?1 AND seq = -1",
                        &ids[1],
                    );
                }),
                Break::Relinked,
            ),
            (
                "cut a session's tail",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "DELETE FROM records WHERE session = ?1 AND seq = 3",
                        &ids[2],
                    )
                }),
                Break::Cut,
            ),
            (
                "replace a session with a recomputed chain",
                Box::new(|c, ids| {
                    let mut rows: Vec<(i64, String, i64, String)> = c
                        .prepare("SELECT seq, kind, at_us, body FROM records WHERE session = ?1 ORDER BY seq")
                        .unwrap()
                        .query_map([&ids[0]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    rows[2].3 = rows[2].3.replace("ann", "eve");
                    let mut prev = [0u8; 32];
                    for (seq, kind, at, body) in rows {
                        let hash = row_hash(
                            &prev,
                            &ids[0],
                            seq as u64,
                            Kind::parse(&kind).unwrap(),
                            at,
                            &body,
                        );
                        c.execute(
                            "UPDATE records SET body = ?1, prev = ?2, hash = ?3 WHERE session = ?4 AND seq = ?5",
                            rusqlite::params![body, &prev[..], &hash[..], ids[0], seq],
                        )
                        .unwrap();
                        prev = hash;
                    }
                }),
                Break::Cut,
            ),
            (
                "replace a session and recompute the whole chain",
                Box::new(|c, ids| {
                    exec(c, "UPDATE records SET body = replace(body, 'bob', 'eve') WHERE session = ?1 AND seq = 2", &ids[1]);
                    let sessions: Vec<String> = c
                        .prepare("SELECT DISTINCT session FROM records")
                        .unwrap()
                        .query_map([], |r| r.get(0))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    let mut heads = std::collections::HashMap::new();
                    for s in sessions {
                        let rows: Vec<(i64, String, i64, String)> = c
                            .prepare("SELECT seq, kind, at_us, body FROM records WHERE session = ?1 ORDER BY seq")
                            .unwrap()
                            .query_map([&s], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                            .unwrap()
                            .map(Result::unwrap)
                            .collect();
                        let mut prev = [0u8; 32];
                        for (seq, kind, at, body) in &rows {
                            let hash = row_hash(
                                &prev,
                                &s,
                                *seq as u64,
                                Kind::parse(kind).unwrap(),
                                *at,
                                body,
                            );
                            c.execute(
                                "UPDATE records SET prev = ?1, hash = ?2 WHERE session = ?3 AND seq = ?4",
                                rusqlite::params![&prev[..], &hash[..], s, seq],
                            )
                            .unwrap();
                            prev = hash;
                        }
                        heads.insert(s, prev);
                    }
                    let links: Vec<(i64, String, i64)> = c
                        .prepare("SELECT n, session, records FROM links ORDER BY n")
                        .unwrap()
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    let mut prev = [0u8; 32];
                    for (n, s, records) in links {
                        let head = heads[&s];
                        let hash = link_hash(&prev, n as u64, &s, records as u64, &head);
                        c.execute(
                            "UPDATE links SET head = ?1, prev = ?2, hash = ?3 WHERE n = ?4",
                            rusqlite::params![&head[..], &prev[..], &hash[..], n],
                        )
                        .unwrap();
                        prev = hash;
                    }
                }),
                Break::Checkpoint,
            ),
            (
                "delete a whole session and its link",
                Box::new(|c, ids| {
                    exec(c, "DELETE FROM records WHERE session = ?1", &ids[1]);
                    exec(c, "DELETE FROM links WHERE session = ?1", &ids[1]);
                }),
                Break::Chain,
            ),
            (
                "delete a whole session",
                Box::new(|c, ids| exec(c, "DELETE FROM records WHERE session = ?1", &ids[1])),
                Break::SessionGone,
            ),
            (
                "give a record a kind the store never writes",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "UPDATE records SET kind = 'junk' WHERE session = ?1 AND seq = 2",
                        &ids[0],
                    )
                }),
                Break::Edited,
            ),
            (
                "add a record that no session's thread reaches",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "INSERT INTO records (session, seq, kind, at_us, body, prev, hash, before) \
                         SELECT session, seq + 100, kind, at_us, body, prev, hash, 0 FROM records WHERE session = ?1 AND seq = 0",
                        &ids[1],
                    )
                }),
                Break::Stray,
            ),
            (
                "rewire a session's thread around a record",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "UPDATE records SET before = (SELECT before FROM records WHERE session = ?1 AND seq = 1) \
                         WHERE session = ?1 AND seq = 2",
                        &ids[1],
                    )
                }),
                Break::Missing,
            ),
            (
                "point a record's thread at itself",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "UPDATE records SET before = n WHERE session = ?1 AND seq = 2",
                        &ids[0],
                    )
                }),
                Break::Missing,
            ),
            (
                "point a session's thread forwards",
                Box::new(|c, ids| {
                    exec(
                        c,
                        "UPDATE records SET before = n + 1 WHERE session = ?1 AND seq = 1",
                        &ids[1],
                    )
                }),
                Break::Missing,
            ),
            (
                "point a session's newest record at another session's",
                Box::new(|c, ids| {
                    c.execute(
                        "UPDATE sessions SET last = (SELECT max(n) FROM records WHERE session = ?2) WHERE id = ?1",
                        [&ids[2], &ids[0]],
                    )
                    .unwrap();
                }),
                Break::Cut,
            ),
            (
                "cut the chain's tail",
                Box::new(|c, ids| exec(c, "DELETE FROM links WHERE session = ?1", &ids[2])),
                Break::Unlinked,
            ),
        ];
        for (what, tamper, want) in cases {
            let found = verify_after(tamper);
            assert_eq!(found.map(|f| f.what), Some(want), "{what}");
        }
    }
}
