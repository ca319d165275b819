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
    session.end("done");
    rec.flush();
    assert_eq!(rec.queued.load(Ordering::Relaxed), 0);
    // Past the bound nothing is queued: dropped and counted.
    assert!(!rec.reserve(MAX_QUEUED_BYTES + 1));
    assert_eq!(rec.queued.load(Ordering::Relaxed), 0);
    rec.queued.store(MAX_QUEUED_BYTES, Ordering::Relaxed);
    rec.send(&"x".into(), Kind::Statement, "{}".into(), false);
    assert_eq!(rec.dropped(), 1);
    assert!(rec.behind());
}
