//! Cost of judging a statement: split + parse + classify + decide, per
//! statement text, uncached (every text new), cached by text (the text
//! seen before, as with prepared statements and ORMs' repeated queries)
//! and cached by fingerprint (the same statement with new literal values,
//! as a simple-protocol client sends it: fingerprinting included). The
//! OLTP mix is pgbench's TPC-B-like transaction with literal values.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlgate::policy::engine::{Engine, SessionPolicy};
use sqlgate::policy::parse::SqlDialect;
use sqlgate::policy::rules::Policy;

/// pgbench's tpcb-like statements, with distinct literals per round;
/// with `new_shapes`, each round's statements also carry aliases of
/// their own, so that every one but BEGIN and END is a new fingerprint.
fn oltp_mix(round: u32, new_shapes: bool) -> Vec<String> {
    let (aid, bid, tid, delta) = (
        round % 100_000 + 1,
        round % 10 + 1,
        round % 100 + 1,
        round % 5000,
    );
    let alias = |prefix: &str| {
        if new_shapes {
            format!(" AS {prefix}{round}")
        } else {
            String::new()
        }
    };
    let (u, a, t, b, h) = (alias("u"), alias("a"), alias("t"), alias("b"), alias("h"));
    vec![
        "BEGIN;".to_owned(),
        format!("UPDATE pgbench_accounts{u} SET abalance = abalance + {delta} WHERE aid = {aid};"),
        format!("SELECT abalance{a} FROM pgbench_accounts WHERE aid = {aid};"),
        format!("UPDATE pgbench_tellers{t} SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
        format!("UPDATE pgbench_branches{b} SET bbalance = bbalance + {delta} WHERE bid = {bid};"),
        format!(
            "INSERT INTO pgbench_history{h} (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"
        ),
        "END;".to_owned(),
    ]
}

fn engine(cache_entries: usize) -> Arc<Engine> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/policies/agents.toml"),
        dir.path().join("agents.toml"),
    )
    .unwrap();
    let policy = Policy::load(&["*.toml".to_owned()], dir.path()).unwrap();
    Arc::new(Engine::new(Some(policy), cache_entries))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("judge");
    let mix = oltp_mix(1, false);
    group.throughput(Throughput::Elements(mix.len() as u64));

    let e = engine(10_000);
    let mut ci = SessionPolicy::new(e, SqlDialect::Postgres, "ci", &[], "app");
    for sql in &mix {
        ci.judge(sql.as_bytes()).unwrap();
    }
    group.bench_function("pgbench tpcb mix, cached", |b| {
        b.iter(|| {
            for sql in &mix {
                ci.judge(std::hint::black_box(sql.as_bytes())).unwrap();
            }
        })
    });

    // New literals every round, one shape: served by fingerprint.
    let e = engine(10_000);
    let mut ci = SessionPolicy::new(e, SqlDialect::Postgres, "ci", &[], "app");
    let mut round = 0u32;
    group.bench_function("pgbench tpcb mix, new literals (fingerprint hit)", |b| {
        b.iter_batched(
            || {
                round += 1;
                oltp_mix(round, false)
            },
            |mix| {
                for sql in &mix {
                    ci.judge(std::hint::black_box(sql.as_bytes())).unwrap();
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });

    // A cache of one entry and statements of new shapes every round
    // (new literals alone would be fingerprint hits): every judgement but
    // BEGIN's and END's splits, parses and classifies.
    let e = engine(1);
    let mut ci = SessionPolicy::new(e, SqlDialect::Postgres, "ci", &[], "app");
    let mut round = 0u32;
    group.bench_function("pgbench tpcb mix, new shapes (uncached)", |b| {
        b.iter_batched(
            || {
                round += 1;
                oltp_mix(round, true)
            },
            |mix| {
                for sql in &mix {
                    ci.judge(std::hint::black_box(sql.as_bytes())).unwrap();
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let select = b"SELECT abalance FROM pgbench_accounts WHERE aid = 4711;";
    let e = engine(10_000);
    let mut bot = SessionPolicy::new(
        e,
        SqlDialect::Postgres,
        "bot",
        &["agents".to_owned()],
        "app",
    );
    bot.judge(select).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("pgbench select, cached", |b| {
        b.iter(|| bot.judge(std::hint::black_box(select)).unwrap())
    });
    let mut n = 0u64;
    group.bench_function("pgbench select, new literal (fingerprint hit)", |b| {
        b.iter_batched(
            || {
                n += 1;
                format!("SELECT abalance FROM pgbench_accounts WHERE aid = {n};")
            },
            |sql| bot.judge(std::hint::black_box(sql.as_bytes())).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    let e = engine(1);
    let mut bot = SessionPolicy::new(
        e,
        SqlDialect::Postgres,
        "bot",
        &["agents".to_owned()],
        "app",
    );
    group.bench_function("pgbench select, uncached", |b| {
        b.iter_batched(
            || {
                // A new alias: a new fingerprint every time.
                n += 1;
                format!("SELECT abalance AS a{n} FROM pgbench_accounts WHERE aid = {n};")
            },
            |sql| bot.judge(std::hint::black_box(sql.as_bytes())).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
