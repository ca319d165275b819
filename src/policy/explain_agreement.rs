//! `sqlgate explain` and the live gateway must never disagree: both run
//! a session's judge, and this test holds them to it over both corpora
//! (every classifier statement and every masking bypass), for a
//! read-only agent with masks, an exempt pipeline and an identity no
//! rule names, in both dialects. A check added to the live path alone
//! (as a MySQL `SHOW ... FROM db` refusal once was) fails it.

/// Every statement of both corpora (the classifier's and the masking
/// bypasses') for a dialect.
#[cfg(test)]
pub(crate) fn corpus_statements(dialect: crate::policy::parse::SqlDialect) -> Vec<&'static str> {
    use crate::policy::parse::SqlDialect;
    const CLASSIFY: &str = include_str!("../../fixtures/policy/classify.tsv");
    const BYPASS: &str = include_str!("../../fixtures/masking/bypass.tsv");
    let (classify, bypass) = match dialect {
        SqlDialect::Postgres => (["pg", "any"], ["pg", "both"]),
        SqlDialect::Mysql => (["my", "any"], ["my", "both"]),
    };
    let pick = |text: &'static str, names: [&str; 2], column: usize| {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(move |l| {
                let parts: Vec<&str> = l.splitn(column + 1, '\t').collect();
                (names.contains(&parts[0])).then(|| parts[column])
            })
            .collect::<Vec<_>>()
    };
    let mut all = pick(CLASSIFY, classify, 2);
    all.extend(pick(BYPASS, bypass, 1));
    all
}

/// The corpora's schema as a catalog snapshot: customers and orders.
#[cfg(test)]
pub(crate) fn tests_catalog(
    dialect: crate::policy::parse::SqlDialect,
) -> crate::policy::mask::catalog::CatalogSnapshot {
    use crate::policy::mask::catalog::CatalogSnapshot;
    use crate::policy::parse::SqlDialect;
    let tables = [
        (
            "customers",
            &["id", "name", "email", "ssn", "card", "salary", "birth"][..],
        ),
        (
            "orders",
            &["id", "customer_id", "total", "note", "status"][..],
        ),
    ];
    match dialect {
        SqlDialect::Postgres => {
            let mut rows = Vec::new();
            for (oid, (t, cols)) in tables.iter().enumerate() {
                for (i, c) in cols.iter().enumerate() {
                    rows.push(vec![
                        Some((16_000 + oid).to_string()),
                        Some("public".to_owned()),
                        Some(t.to_string()),
                        Some("r".to_owned()),
                        Some((i + 1).to_string()),
                        Some(c.to_string()),
                        None,
                    ]);
                }
            }
            CatalogSnapshot::from_pg_rows(&rows, vec!["public".to_owned()])
        }
        SqlDialect::Mysql => {
            let rows: Vec<Vec<Option<String>>> = tables
                .iter()
                .flat_map(|(t, cols)| {
                    cols.iter().map(move |c| {
                        vec![
                            Some("app".to_owned()),
                            Some(t.to_string()),
                            Some(c.to_string()),
                            None,
                        ]
                    })
                })
                .collect();
            CatalogSnapshot::from_mysql_rows(&rows, "app")
        }
    }
}

/// The example policy and a masking rule (ssn, email, card; `ci`
/// exempt), loaded from a directory of its own (`name`).
#[cfg(test)]
pub(crate) fn tests_policy(name: &str) -> crate::policy::rules::Policy {
    const MASKS: &str = r#"
[[mask]]
columns = ["*.customers.ssn", "*.customers.email", "*.customers.card"]
function = "redact"
except_users = ["ci"]
"#;
    let dir = std::env::temp_dir().join(format!("sqlgate-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/agents.toml"),
        dir.join("agents.toml"),
    )
    .unwrap();
    std::fs::write(dir.join("masks.toml"), MASKS).unwrap();
    crate::policy::rules::Policy::load(&["*.toml".to_owned()], &dir).unwrap()
}

/// A read-only agent with masks, an exempt pipeline, an identity no rule
/// names.
#[cfg(test)]
pub(crate) fn tests_identities() -> [(&'static str, Vec<String>); 3] {
    [
        ("bot", vec!["agents".to_owned()]),
        ("ci", vec![]),
        ("stranger", vec![]),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::policy::engine::{Engine, SessionPolicy};
    use crate::policy::explain::explain;
    use crate::policy::mask::catalog::CatalogSnapshot;
    use crate::policy::parse::SqlDialect;

    fn statements(dialect: SqlDialect) -> Vec<&'static str> {
        super::corpus_statements(dialect)
    }

    fn catalog(dialect: SqlDialect) -> CatalogSnapshot {
        super::tests_catalog(dialect)
    }

    #[test]
    fn explain_and_the_live_judge_agree_over_both_corpora() {
        let policy = super::tests_policy("explain");
        let identities = super::tests_identities();
        let mut compared = 0;
        for dialect in [SqlDialect::Postgres, SqlDialect::Mysql] {
            let snapshot = catalog(dialect);
            let database = (dialect == SqlDialect::Mysql).then_some("app");
            for sql in statements(dialect) {
                for (user, groups) in &identities {
                    let engine = Arc::new(Engine::new(Some(policy.clone()), 16));
                    engine.set_catalog("app", snapshot.clone());
                    let mut live = SessionPolicy::new(engine, dialect, user, groups, "app");
                    if let Some(db) = database {
                        live = live.confined_to(db);
                    }
                    let want = match live.judge(sql.as_bytes()) {
                        Ok(_) => "allow".to_owned(),
                        Err(r) => r.verdict.as_str().to_owned(),
                    };
                    let e = explain(
                        Some(&policy),
                        dialect,
                        user,
                        groups,
                        "app",
                        database,
                        sql,
                        Some(Ok(&snapshot)),
                    );
                    assert_eq!(e["verdict"], want.as_str(), "{user} {dialect:?}: {sql}");
                    // The statement explain shows refused first is the
                    // one the gateway refuses.
                    let first = e["statements"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|s| s["verdict"] != "allow")
                        .map_or("allow", |s| s["verdict"].as_str().unwrap());
                    assert_eq!(first, want.as_str(), "{user} {dialect:?}: {sql}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 3000, "{compared}");
    }
}
