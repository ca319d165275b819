use super::*;

#[test]
fn queued_bytes_are_bounded_and_given_back_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("q.db")).unwrap();
    let rec = Recorder::start(
        Box::new(store),
        Duration::from_millis(5),
        OnFailure::Refuse,
        "test",
        None,
        None,
    )
    .unwrap();
    let start = crate::store::SessionStart {
        instance: "test".into(),
        user: "u".into(),
        groups: vec![],
        auth: "scram".into(),
        client: "127.0.0.1:1".into(),
        tls: false,
        target: "t".into(),
        protocol: "postgres".into(),
    };
    let mut session = rec.session(&start);
    assert!(session.send(Kind::Statement, "{}", false));
    session.end("done");
    rec.flush();
    assert_eq!(rec.queued.load(Ordering::Relaxed), 0);
    // Past the bound nothing is queued: dropped and counted.
    assert!(!rec.reserve(MAX_QUEUED_BYTES + 1));
    assert_eq!(rec.queued.load(Ordering::Relaxed), 0);
    let other = rec.session(&start);
    rec.queued.store(MAX_QUEUED_BYTES, Ordering::Relaxed);
    assert!(!other.send(Kind::Statement, "{}", false));
    assert_eq!(rec.dropped(), 1);
    assert!(rec.behind());
    // A definition is never left out for the bound.
    assert!(other.send(Kind::Definition, "{}", false));
}

#[test]
fn a_refused_durable_record_is_taken_out_of_the_kept_group() {
    let lines = "statement\t1\ta\nstatement\t2\tb\nstatement\t3\tc\nstatement\t4\td\n";
    let at = |n: &str| lines.find(&format!("statement\t{n}")).unwrap();
    let cut = vec![at("2")..at("3"), at("4")..lines.len()];
    assert_eq!(without(lines, &cut), "statement\t1\ta\nstatement\t3\tc\n");
}
