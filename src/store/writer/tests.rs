use super::*;

/// A recorder over a throwaway SQLite store (the directory lives as long
/// as the first value).
fn recorder() -> (tempfile::TempDir, Recorder) {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("r.db")).unwrap();
    let rec = Recorder::start(
        Box::new(store),
        Duration::from_millis(5),
        OnFailure::Refuse,
        "test",
        None,
        None,
    )
    .unwrap();
    (dir, rec)
}

fn start() -> crate::store::SessionStart {
    crate::store::SessionStart {
        instance: "test".into(),
        user: "u".into(),
        groups: vec![],
        auth: "scram".into(),
        client: "127.0.0.1:1".into(),
        tls: false,
        target: "t".into(),
        protocol: "postgres".into(),
    }
}

#[test]
fn queued_bytes_are_bounded_and_given_back_when_committed() {
    let (_dir, rec) = recorder();
    let start = start();
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

/// Lines as the mailbox writes them (the first time whole, the rest
/// relative), and where each one is.
fn written(times: &[i64]) -> (String, Vec<std::ops::Range<usize>>) {
    let mut out = Vec::new();
    let mut at = Vec::new();
    let mut before = None;
    for (i, &t) in times.iter().enumerate() {
        let start = out.len();
        out.extend_from_slice(b"statement\t");
        crate::store::line::write_time(&mut out, t, before);
        out.extend_from_slice(format!("\t{{\"n\":{i}}}\n").as_bytes());
        at.push(start..out.len());
        before = Some(t);
    }
    (String::from_utf8(out).unwrap(), at)
}

/// Each line's JSON and time, as readers read them.
fn read(lines: &str) -> Vec<(String, Option<i64>)> {
    let mut times = crate::store::line::Times::default();
    lines
        .lines()
        .map(|l| {
            let (_, t, body) = crate::store::line::fields(l).unwrap();
            (body.to_owned(), times.next(t))
        })
        .collect()
}

#[test]
fn lines_kept_after_cut_ones_keep_their_times() {
    let times = [
        1_796_603_885_356_059,
        1_796_603_885_357_330,
        1_796_603_885_357_331,
        1_796_603_885_360_000,
        1_796_603_885_360_001,
    ];
    let (lines, at) = written(&times);
    assert!(lines.contains("\t+1271\t"), "{lines}");
    let whole = read(&lines);
    // Every choice of lines to cut: what is kept reads as it did.
    for mask in 0u32..(1 << times.len()) {
        let cut: Vec<_> = (0..times.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| at[i].clone())
            .collect();
        let kept: Vec<_> = (0..times.len())
            .filter(|i| mask & (1 << i) == 0)
            .map(|i| whole[i].clone())
            .collect();
        assert_eq!(read(&without(&lines, &cut)), kept, "cut {mask:#b}");
    }
}

#[test]
fn a_range_that_is_not_whole_lines_is_kept_not_a_panic() {
    let lines = "statement\t1\té\n";
    let inside = lines.find('é').unwrap() + 1;
    let cut = inside..lines.len();
    assert_eq!(without(lines, std::slice::from_ref(&cut)), lines);
}

#[test]
fn with_the_bound_reached_a_new_session_goes_unrecorded_and_is_counted() {
    let (_dir, rec) = recorder();
    rec.queued.store(MAX_QUEUED_BYTES, Ordering::Relaxed);
    let start = start();
    let session = rec.session(&start);
    assert_eq!(rec.dropped(), 1);
    assert!(!session.send(Kind::Definition, "{}", false), "closed");
    assert_eq!(rec.queued.load(Ordering::Relaxed), MAX_QUEUED_BYTES);
}
