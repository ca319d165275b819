//! What recording a read costs the gateway's process: judging a
//! simple-protocol select (new literal each time, as pgbench `-S -M
//! simple` sends it) with recording off, then the same with its statement
//! and its outcome (one result row) recorded into a SQLite store, the
//! writer thread's work included. CPU time is every thread's on-CPU time
//! from `/proc/self/task/*/schedstat`, so the writer's share counts.
//!
//!   cargo bench --bench recording
//!
//! Not a criterion bench: criterion times the calling thread only, and
//! half of recording's work is the writer's.

use std::sync::Arc;
use std::time::Duration;

use sqlgate::policy::engine::{Engine, SessionPolicy};
use sqlgate::policy::parse::SqlDialect;
use sqlgate::policy::rules::Policy;
use sqlgate::recording::SessionLog;
use sqlgate::store::sqlite::SqliteStore;
use sqlgate::store::writer::{OnFailure, Recorder};
use sqlgate::store::SessionStart;
use sqlgate_net::outcome::{Outcome, ResultSample};

/// As the `sqlgate` binary allocates.
#[global_allocator]
static ALLOCATOR: sqlgate::allocator::Allocator = sqlgate::allocator::Allocator;

const SESSIONS: usize = 16;
const READS: usize = 400_000;

/// Nanoseconds every thread of this process has been on a CPU.
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn policies() -> Vec<SessionPolicy> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bench.toml"),
        "[[rule]]\nname = \"bench\"\nusers = [\"bench\"]\ntargets = [\"*\"]\nallow = [\"read\", \"write\", \"tx\", \"session\"]\n",
    )
    .unwrap();
    let policy = Policy::load(&["*.toml".to_owned()], dir.path()).unwrap();
    let engine = Arc::new(Engine::new(Some(policy), 10_000));
    (0..SESSIONS)
        .map(|_| SessionPolicy::new(engine.clone(), SqlDialect::Postgres, "bench", &[], "app"))
        .collect()
}

fn select(i: usize) -> String {
    format!(
        "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
        i % 1_000_000 + 1
    )
}

/// Judges (and, with `logs`, records) `READS` selects round-robin over
/// the sessions; CPU ns per read.
fn run(policies: &mut [SessionPolicy], logs: Option<(&mut [SessionLog], &Recorder)>) -> f64 {
    let texts: Vec<String> = (0..READS).map(select).collect();
    let before = cpu_ns();
    match logs {
        None => {
            for (i, sql) in texts.iter().enumerate() {
                let judged = policies[i % SESSIONS].judge(sql.as_bytes());
                std::hint::black_box(&judged);
            }
        }
        Some((logs, recorder)) => {
            let sinks: Vec<_> = logs.iter().map(|l| l.outcome_sink().unwrap()).collect();
            for (i, sql) in texts.iter().enumerate() {
                let s = i % SESSIONS;
                let judged = policies[s].judge(sql.as_bytes());
                let shape = policies[s].shape();
                let wait = logs[s].judged(SqlDialect::Postgres, "query", sql, &judged, shape);
                assert!(wait.is_none(), "a read waits for nothing");
                let value = (i % 5000).to_string();
                let sample =
                    ResultSample::new(vec!["abalance".to_owned()], [[Some(&value[..])]], false);
                sinks[s].outcome(&Outcome::Done {
                    tag: "SELECT 1".into(),
                    rows: 1,
                    bytes: 70,
                    sample: Some(std::borrow::Cow::Owned(sample)),
                });
            }
            recorder.flush();
        }
    }
    (cpu_ns() - before) as f64 / READS as f64
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    sqlgate::install_crypto_provider();
    sqlgate::allocator::return_freed_memory_at_once();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("bench.db")).unwrap();
    let recorder = Recorder::start(
        Box::new(store),
        Duration::from_millis(200),
        OnFailure::Refuse,
        "bench",
        None,
        None,
    )
    .unwrap();
    let mut policies = policies();
    let mut logs: Vec<SessionLog> = (0..SESSIONS)
        .map(|i| {
            SessionLog::new(Some(recorder.session(&SessionStart {
                instance: "bench".into(),
                user: "bench".into(),
                groups: vec![],
                auth: "scram".into(),
                client: format!("127.0.0.1:{}", 40000 + i),
                tls: false,
                target: "app".into(),
                protocol: "postgres".into(),
            })))
        })
        .collect();
    // Warm the fingerprint cache and the store.
    run(&mut policies, Some((&mut logs, &recorder)));
    for round in 1..=3 {
        let off = run(&mut policies, None);
        let on = run(&mut policies, Some((&mut logs, &recorder)));
        println!(
            "round {round}: judge only {:.2} µs/read, judge + record {:.2} µs/read, recording {:.2} µs/read",
            off / 1000.0,
            on / 1000.0,
            (on - off) / 1000.0
        );
    }
}
