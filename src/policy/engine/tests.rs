use super::*;

fn engine() -> Arc<Engine> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        r#"
[[rule]]
name = "agents-read-only"
groups = ["agents"]
targets = ["*"]
allow  = ["read", "tx", "session"]
review = ["write"]
deny   = ["ddl", "dcl", "admin", "file", "code", "unknown"]
"#,
    )
    .unwrap();
    let policy = Policy::load(&["*.toml".to_owned()], dir.path()).unwrap();
    Arc::new(Engine::new(Some(policy), 100))
}

fn agent(e: &Arc<Engine>) -> SessionPolicy {
    SessionPolicy::new(
        e.clone(),
        SqlDialect::Postgres,
        "agent",
        &["agents".to_owned()],
        "app",
    )
}

#[test]
fn one_refused_statement_refuses_the_text_with_its_position() {
    let e = engine();
    let mut s = agent(&e);
    assert!(s.judge(b"select 1").is_ok());
    let r = s.judge(b"select 1; drop table t").unwrap_err();
    assert_eq!(r.verdict, Verdict::Deny);
    assert_eq!(r.position, 11);
    assert!(r.message.contains("ddl.drop"), "{}", r.message);
    assert!(r.message.contains("agents-read-only"), "{}", r.message);
    assert!(
        r.detail.contains("statement 2 of 2: drop table t"),
        "{}",
        r.detail
    );
    let r = s.judge(b"delete from t").unwrap_err();
    assert_eq!(r.verdict, Verdict::Review);
    assert!(r.message.contains("requires approval"), "{}", r.message);
}

#[test]
fn execute_carries_the_verdict_of_what_it_runs() {
    let e = engine();
    let mut s = agent(&e);
    assert!(s.judge(b"prepare p as select 1").is_ok());
    assert!(s.judge(b"execute p").is_ok());
    assert!(s.judge(b"prepare d as delete from t").is_err());
    // Never prepared through the gateway: unknown.
    assert!(s.judge(b"execute d").is_err());
    assert!(s.judge(b"deallocate p").is_ok());
    assert!(s.judge(b"execute p").is_err());
}

#[test]
fn a_reload_changes_the_verdicts_of_running_sessions() {
    let e = engine();
    let mut s = agent(&e);
    assert!(s.judge(b"select 1").is_ok());
    // Its writes are reviewed, which refuses them for now.
    assert!(s.read_only());
    e.replace(Some(Policy::default()));
    assert!(s.judge(b"select 1").is_err());
    assert!(s.read_only());
    e.replace(None);
    assert!(s.judge(b"drop table t").is_ok());
    assert!(!s.read_only());
}

/// A session whose texts are judged by copies of its state elsewhere
/// (long texts, `policy::offload`), each copy's state then taken back,
/// judges as a session judging in place: prepared names, shapes and
/// refusals carry over from one text to the next.
#[test]
fn copies_judging_elsewhere_leave_the_state_judging_in_place_leaves() {
    // (An engine each: what one's cache has seen decides how a text is
    // remembered.)
    let (e, f) = (engine(), engine());
    let mut here = agent(&e);
    let mut there = agent(&f);
    for text in [
        "PREPARE s AS DELETE FROM t",
        "SELECT 1",
        "EXECUTE s",
        "PREPARE r AS SELECT 2",
        "EXECUTE r",
        "DEALLOCATE s",
        "EXECUTE s",
        "SELECT 3",
        "DROP TABLE t",
    ] {
        let shown = |r: &Result<Vec<Judged>, Refusal>| match r {
            Ok(j) => format!("{:?}", j.iter().map(|j| j.tags).collect::<Vec<_>>()),
            Err(e) => e.message.clone(),
        };
        let in_place = here.judge(text.as_bytes());
        let mut copy = there.copy_for_elsewhere();
        let elsewhere = copy.judge(text.as_bytes());
        there.adopt(copy);
        assert_eq!(shown(&elsewhere), shown(&in_place), "{text}");
        assert_eq!(
            there.shape().map(|s| s.id),
            here.shape().map(|s| s.id),
            "{text}"
        );
    }
}
