//! Masking cost per row, in process: pgbench's 10,000-row result
//! (`aid, bid, abalance` int4 and `filler` char(84)) with the text column
//! masked, rewritten DataRow by DataRow as the relay does, against the
//! copy an unmasked relay does not even make. The end-to-end figure is
//! `benches/mask_e2e.sh`.

use std::sync::Arc;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use sqlgate::masking::pg::PgResultMask;
use sqlgate::policy::mask::functions::{HashKey, MaskFunction};
use sqlgate::policy::mask::lineage::ColumnRef;
use sqlgate::policy::mask::result::StatementMasks;
use sqlgate::policy::mask::rules::{column_pattern, ColumnPlan, MaskRule, OnUnknown};
use sqlgate_postgres::mask::{
    mask_data_row, mask_data_row_in_place, ActiveMask, Field, ResultMask,
};

fn field(name: &str, type_oid: u32, column: i16) -> Field {
    Field {
        name: name.as_bytes().to_vec(),
        table_oid: 16384,
        column,
        type_oid,
        type_len: -1,
        type_mod: -1,
        format: 0,
    }
}

fn active(function: MaskFunction) -> ActiveMask {
    let rule = MaskRule {
        name: "filler".into(),
        columns: vec![column_pattern("public.pgbench_accounts.filler").unwrap()],
        function,
        except_users: vec![],
        except_groups: vec![],
        targets: vec!["*".into()],
        predicates_allowed: false,
        on_unknown: OnUnknown::Refuse,
        origin: "bench".into(),
    };
    let filler = ColumnRef {
        schema: "public".into(),
        table: "pgbench_accounts".into(),
        column: "filler".into(),
    };
    let mask = PgResultMask {
        masks: StatementMasks {
            plan: Some(vec![
                ColumnPlan::Clear,
                ColumnPlan::Clear,
                ColumnPlan::Clear,
                ColumnPlan::Masked {
                    rule: 0,
                    derived: false,
                    sources: vec![filler],
                },
            ]),
            named: None,
            names: Vec::new(),
            reads_masked: true,
            opaque: false,
            rules: Arc::new(vec![rule]),
            procedure: false,
        },
        catalog: None,
        key: HashKey::new(b"bench-key"),
        cells: Default::default(),
    };
    let fields = vec![
        field("aid", 23, 1),
        field("bid", 23, 2),
        field("abalance", 23, 3),
        field("filler", 1042, 4),
    ];
    let cells = mask.columns(&fields).expect("filler is masked");
    ActiveMask { fields, cells }
}

/// DataRow bodies like pgbench's (`filler` is 84 characters).
fn rows() -> Vec<Vec<u8>> {
    (1..=10_000)
        .map(|aid: i32| {
            let mut b = 4i16.to_be_bytes().to_vec();
            for v in [
                aid.to_string(),
                "1".to_owned(),
                "0".to_owned(),
                format!("{aid:<84}"),
            ] {
                b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                b.extend_from_slice(v.as_bytes());
            }
            b
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let mut g = c.benchmark_group("mask_10k_rows");
    g.throughput(Throughput::Elements(rows.len() as u64));
    let mut out = BytesMut::with_capacity(256);
    let mut cell = Vec::new();
    g.bench_function("copy_only", |b| {
        b.iter(|| {
            for r in &rows {
                out.clear();
                out.extend_from_slice(r);
            }
        })
    });
    let a = active(MaskFunction::Keep { first: 0, last: 4 });
    let mut row = Vec::new();
    g.bench_function("keep_last_4_in_place", |b| {
        b.iter(|| {
            for r in &rows {
                // The copy stands for the row arriving in the read buffer.
                row.clear();
                row.extend_from_slice(r);
                assert!(mask_data_row_in_place(&mut row, &a));
            }
        })
    });
    for (name, f) in [
        ("keep_last_4", MaskFunction::Keep { first: 0, last: 4 }),
        ("redact", MaskFunction::Redact),
        ("hash", MaskFunction::Hash),
    ] {
        let a = active(f);
        g.bench_function(name, |b| {
            b.iter(|| {
                for r in &rows {
                    out.clear();
                    mask_data_row(r, &a, &mut out, &mut cell).unwrap();
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
