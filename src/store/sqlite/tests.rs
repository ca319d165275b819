//! The SQLite store's own behaviour: snapshots, the migration from
//! records keyed by session, a session's thread of records read safely,
//! and what a group commit writes.

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

/// A record of session `s` (its hashes are not checked by `append`).
fn row(s: &str, seq: u64, kind: Kind, body: &str) -> Row {
    Row {
        session: s.to_owned(),
        seq,
        kind,
        at_us: 1,
        body: body.to_owned(),
        prev: [0; 32],
        hash: [0; 32],
    }
}

/// Session `s`'s first record, its start.
fn started(s: &str, user: &str) -> Row {
    let body = serde_json::to_string(&crate::store::chain::tests::start(user)).unwrap();
    row(s, 0, Kind::SessionStart, &body)
}

/// A store holding `chain::tests::trail`'s sessions: its directory
/// (kept for as long as the store is used) and its path.
fn a_trail() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    crate::store::chain::tests::trail(&path);
    (dir, path)
}

/// Every session's rows, by id.
fn all_rows(store: &mut SqliteStore) -> Vec<(String, Vec<Row>)> {
    let ids = store.session_ids().unwrap();
    ids.into_iter()
        .map(|id| {
            let rows = store.rows(&id).unwrap();
            (id, rows)
        })
        .collect()
}

fn verified(store: &mut SqliteStore) -> crate::store::chain::Report {
    let public = crate::store::chain::tests::public();
    crate::store::chain::verify(store, Some(&public)).unwrap()
}

#[test]
fn a_store_keyed_by_session_is_put_in_commit_order_and_still_verifies() {
    let (_dir, path) = a_trail();
    let mut store = SqliteStore::open(&path).unwrap();
    let before = all_rows(&mut store);
    let listed = store.sessions().unwrap();
    drop(store);
    back_to_form_0(&path);

    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(form(&path), 1);
    assert_eq!(all_rows(&mut store), before);
    assert_eq!(store.sessions().unwrap(), listed);
    let report = verified(&mut store);
    assert_eq!(report.broken, None);
    assert_eq!((report.sessions, report.signed), (4, 1));
    // The migrated store takes new records after the old ones.
    store
        .append(&[started("later", "eve")], &mut [], &[])
        .unwrap();
    assert_eq!(store.rows("later").unwrap().len(), 1);
    // A gateway of the first form still writing to it fails at once
    // instead of adding records no thread reaches.
    let old_insert = store.connection().execute(
        "INSERT INTO records (session, seq, kind, at_us, body, prev, hash) VALUES ('old', 0, 'events', 1, 'x', x'00', x'00')",
        [],
    );
    assert!(old_insert.is_err());
}

#[test]
fn a_store_of_a_newer_form_is_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 2)
        .unwrap();
    let Err(StoreError::Backend(e)) = SqliteStore::open(&path) else {
        panic!("a store of form 2 opened");
    };
    assert!(e.contains("form 2"), "{e}");
}

/// The first form's records table (types aside, which SQLite does not
/// enforce): keyed by `(session, seq)`.
const FORM_0_RECORDS: &str = "CREATE TABLE records_form_0 (session, seq, kind, at_us, body, prev, hash, PRIMARY KEY (session, seq));";

/// `path`'s store put back in the first form, as a gateway before this
/// one left it: records keyed by (session, seq), listings without their
/// newest.
fn back_to_form_0(path: &std::path::Path) {
    Connection::open(path)
        .unwrap()
        .execute_batch(&format!(
            "{}
             INSERT INTO records_form_0 SELECT session, seq, kind, at_us, body, prev, hash FROM records;
             DROP TABLE records;
             ALTER TABLE records_form_0 RENAME TO records;
             ALTER TABLE sessions DROP COLUMN last;
             PRAGMA user_version = 0;",
            FORM_0_RECORDS
        ))
        .unwrap();
}

fn form(path: &std::path::Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_command_that_only_reads_never_migrates_a_store_a_gateway_may_be_writing() {
    let (dir, path) = a_trail();
    back_to_form_0(&path);
    let Err(StoreError::Backend(e)) = SqliteStore::open_for(&path, Access::Read) else {
        panic!("a reader opened a store of the first form");
    };
    assert!(e.contains("first form"), "{e}");
    assert_eq!(form(&path), 0);
    // A new file is made in the new form by anyone.
    let fresh = dir.path().join("new.db");
    drop(SqliteStore::open_for(&fresh, Access::Read).unwrap());
    assert_eq!(form(&fresh), 1);
}

#[test]
fn a_record_that_does_not_follow_its_sessions_stored_ones_is_refused_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    store.append(&[started("s", "ann")], &mut [], &[]).unwrap();
    // The same record again (a group retried although it landed), and
    // one past a gap.
    for seq in [0, 2] {
        let Err(StoreError::Backend(e)) =
            store.append(&[row("s", seq, Kind::Events, "x")], &mut [], &[])
        else {
            panic!("record {seq} stored after record 0");
        };
        assert!(e.contains("does not follow"), "{e}");
    }
    store
        .append(&[row("s", 1, Kind::Events, "x")], &mut [], &[])
        .unwrap();
    assert_eq!(store.rows("s").unwrap().len(), 2);
    assert_eq!(store.record_count().unwrap(), 2);
}

#[test]
fn a_store_numbered_up_to_the_largest_place_refuses_records_instead_of_scattering_them() {
    let (_dir, path) = a_trail();
    let mut store = SqliteStore::open(&path).unwrap();
    store
        .connection()
        .execute(
            "UPDATE records SET n = 9223372036854775807 WHERE n = (SELECT max(n) FROM records)",
            [],
        )
        .unwrap();
    let (row, link) = ended("later");
    let Err(StoreError::Backend(e)) = store.append(&[row], &mut [link], &[]) else {
        panic!("a record was stored past the largest place");
    };
    assert!(e.contains("largest place"), "{e}");
}

/// WAL frames written so far (checkpoints off).
fn frames(path: &std::path::Path) -> u64 {
    let wal = std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    wal.saturating_sub(32) / (4096 + 24)
}

#[test]
fn a_group_commit_of_busy_sessions_writes_their_records_not_an_index_leaf_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut store = SqliteStore::open(&path).unwrap();
    store
        .connection()
        .pragma_update(None, "wal_autocheckpoint", 0)
        .unwrap();
    let sessions: Vec<String> = (0..16)
        .map(|i| format!("session-{i:02}-{}", "x".repeat(20)))
        .collect();
    let starts: Vec<Row> = sessions.iter().map(|s| started(s, "ann")).collect();
    store.append(&starts, &mut [], &[]).unwrap();
    // Each commit: one record of about 1.2 KB per session (what a busy
    // session's 200 ms of reads packs to), and its counts.
    let mut noise = 0x9e37_79b9_u32;
    let mut group = |seq: u64| {
        let rows: Vec<Row> = sessions
            .iter()
            .map(|s| {
                let body: String = (0..1200)
                    .map(|_| {
                        noise ^= noise << 13;
                        noise ^= noise >> 17;
                        noise ^= noise << 5;
                        char::from(b'a' + (noise % 26) as u8)
                    })
                    .collect();
                row(s, seq, Kind::Events, &body)
            })
            .collect();
        let counts: Vec<(String, u64, u64)> = sessions.iter().map(|s| (s.clone(), 30, 0)).collect();
        (rows, counts)
    };
    for seq in 1..=40 {
        let (rows, counts) = group(seq);
        store.append(&rows, &mut [], &counts).unwrap();
    }
    let before = frames(&path);
    for seq in 41..=60 {
        let (rows, counts) = group(seq);
        store.append(&rows, &mut [], &counts).unwrap();
    }
    let per_commit = (frames(&path) - before) as f64 / 20.0;
    // 16 records of 1.2 KB fill about five pages; the listings of the
    // sessions and the table's inner pages a few more: 9 here. With an
    // index on (session, seq), the same commits write 19: a leaf of it
    // per session.
    assert!(per_commit <= 12.0, "{per_commit} pages a commit");
}
