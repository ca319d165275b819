//! Cost of the statement hook's parse: every statement text the gateway
//! sees goes through it, so this is per-statement overhead on the data
//! path. Inputs are the corpus in fixtures/sql/pg_statements.sql.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqlgate::policy::parse::{parse, SqlDialect};

fn corpus() -> Vec<String> {
    let text = include_str!("../fixtures/sql/pg_statements.sql");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
        .map(str::to_owned)
        .collect()
}

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    let mut group = c.benchmark_group("parse");
    group.bench_function("pgbench select (simple protocol)", |b| {
        let sql = corpus[0].as_bytes();
        b.iter(|| parse(SqlDialect::Postgres, std::hint::black_box(sql)).unwrap())
    });
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("whole corpus", |b| {
        b.iter(|| {
            for sql in &corpus {
                parse(SqlDialect::Postgres, std::hint::black_box(sql.as_bytes())).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
