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
