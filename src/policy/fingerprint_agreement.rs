//! A fingerprint may stand for a text in the classification cache only
//! if nothing the gateway decides depends on the literal values it takes
//! out. This test holds the cache to it over both corpora (every
//! classifier statement and every masking bypass), for a masked agent,
//! an exempt pipeline and an identity no rule names, in both dialects:
//! each statement's literals are replaced by other values of their kind
//! (numbers and strings that flip comparisons, settings, patterns), and
//! the judgement of each variant served from a cache primed with the
//! original must equal a fresh judgement of the variant — verdict, tags,
//! deciding rule, masks, refusal text, statement spans and fingerprint.

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sqlparser::tokenizer::{Token, Tokenizer};

    use crate::policy::engine::{Engine, Judged, Refusal, SessionPolicy};
    use crate::policy::mask::catalog::CatalogSnapshot;
    use crate::policy::parse::SqlDialect;
    use crate::policy::rules::Policy;

    /// Values that change decisions when they change: equal and unequal
    /// constants, output positions, truthy strings, LIKE's `%`, settings
    /// and encodings.
    const INTEGERS: &[&str] = &[
        "0",
        "1",
        "2",
        "3",
        "7",
        "42",
        "100000",
        "123456789012345678",
    ];
    const DECIMALS: &[&str] = &["0.0", "1.0", "1.5", "0.25"];
    const STRINGS: &[&str] = &[
        "",
        "a",
        "1",
        "0",
        "%",
        "x%",
        "ann@example.com",
        "search_path",
        "public",
        "sjis",
        "utf8",
        "on",
        "off",
        "client_encoding",
        "app",
    ];

    /// A literal's kind: variants keep it.
    enum Kind {
        Integer,
        Decimal,
        String,
    }

    fn statements(dialect: SqlDialect) -> Vec<&'static str> {
        super::super::explain_agreement::corpus_statements(dialect)
    }

    /// The text as its tokens render it, with each literal replaced by
    /// `pick(kind)` (`None`: the text as rendered; `Err`: not tokenized).
    fn rendered(
        dialect: SqlDialect,
        sql: &str,
        mut pick: impl FnMut(Kind) -> &'static str,
        vary: bool,
    ) -> Option<String> {
        let tokens = Tokenizer::new(dialect.dialect(), sql).tokenize().ok()?;
        let mut out = String::new();
        for t in tokens {
            match t {
                Token::Number(n, _) if vary => out.push_str(pick(if n.contains('.') {
                    Kind::Decimal
                } else {
                    Kind::Integer
                })),
                Token::SingleQuotedString(_) if vary => {
                    out.push('\'');
                    out.push_str(pick(Kind::String));
                    out.push('\'');
                }
                t => out.push_str(&t.to_string()),
            }
        }
        Some(out)
    }

    /// What a judgement decided, without the parse tree (whose literals
    /// differ by design).
    fn decided(result: &Result<Vec<Judged>, Refusal>) -> String {
        match result {
            Ok(list) => list
                .iter()
                .map(|j| {
                    format!(
                        "{}..{} {:?} fp={} tags=[{}] {:?} masks={:?}",
                        j.statement.start,
                        j.statement.end,
                        j.statement.bytes,
                        j.statement.fingerprint,
                        j.tags,
                        j.decision,
                        j.masks
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Err(r) => format!("refused {r:?}"),
        }
    }

    fn catalog(dialect: SqlDialect) -> CatalogSnapshot {
        super::super::explain_agreement::tests_catalog(dialect)
    }

    fn policy(name: &str) -> Policy {
        super::super::explain_agreement::tests_policy(name)
    }

    fn identities() -> [(&'static str, Vec<String>); 3] {
        super::super::explain_agreement::tests_identities()
    }

    /// Texts an attack review found sharing a fingerprint with a text
    /// read differently (by the server, sqlparser or masking): each B,
    /// judged from a cache primed with A, must be judged as fresh.
    const PAIRS: &[(SqlDialect, &str, &str)] = &[
        // `--` ends at a carriage return for PostgreSQL.
        (SqlDialect::Postgres, "SELECT 1", "SELECT 2 --\r; DROP TABLE customers"),
        (SqlDialect::Postgres, "SELECT 1", "SELECT 1 --\r, lower(ssn) FROM customers"),
        // `/* /*/` opens a second level.
        (SqlDialect::Postgres, "SELECT 1, 'x'", "SELECT 1, /* /*/ ' */ */ 1; DROP TABLE customers; -- '"),
        (SqlDialect::Postgres, "SELECT name, 'x' FROM customers", "SELECT name, /* /*/ ' */ */ lower(ssn) FROM customers --' FROM customers"),
        // A MySQL string alias is a name.
        (SqlDialect::Mysql, "SELECT lower(n) FROM (SELECT ssn AS 'x', name AS 'n' FROM customers) t", "SELECT lower(n) FROM (SELECT ssn AS 'n', name AS 'x' FROM customers) t"),
        (SqlDialect::Mysql, "WITH t AS (SELECT ssn AS 'x', name AS 'n' FROM customers) SELECT lower(n) FROM t", "WITH t AS (SELECT ssn AS 'n', name AS 'x' FROM customers) SELECT lower(n) FROM t"),
        (SqlDialect::Mysql, "SELECT ssn AS 'x', name AS 'n' FROM customers ORDER BY n", "SELECT ssn AS 'n', name AS 'x' FROM customers ORDER BY n"),
        // Output positions after nested lists and clause-like names.
        (SqlDialect::Postgres, "SELECT name, ssn FROM customers ORDER BY (SELECT 1 ORDER BY 1), 1", "SELECT name, ssn FROM customers ORDER BY (SELECT 1 ORDER BY 1), 2"),
        (SqlDialect::Mysql, "SELECT name, ssn FROM customers ORDER BY (SELECT 1 ORDER BY 1), 1", "SELECT name, ssn FROM customers ORDER BY (SELECT 1 ORDER BY 1), 2"),
        (SqlDialect::Postgres, "SELECT count(*), lower(ssn) FROM customers GROUP BY (SELECT 1 GROUP BY 1), 1", "SELECT count(*), lower(ssn) FROM customers GROUP BY (SELECT 1 GROUP BY 1), 2"),
        (SqlDialect::Mysql, "SELECT name, ssn FROM customers ORDER BY @offset, 1", "SELECT name, ssn FROM customers ORDER BY @offset, 2"),
        (SqlDialect::Postgres, "SELECT name, ssn FROM (SELECT name, ssn, 0 AS limit FROM customers) c ORDER BY c.limit, 1", "SELECT name, ssn FROM (SELECT name, ssn, 0 AS limit FROM customers) c ORDER BY c.limit, 2"),
        // Case-sensitive checks on names.
        (SqlDialect::Postgres, "DELETE FROM customers WHERE id OPERATOR(PG_CATALOG.=) id", "DELETE FROM customers WHERE id OPERATOR(pg_catalog.=) id"),
        (SqlDialect::Postgres, "SELECT PG_CATALOG.set_config('search_path', 'public', false)", "SELECT pg_catalog.set_config('search_path', 'hr', false)"),
        (SqlDialect::Postgres, "SELECT PG_CATALOG.set_config('search_path', 'public', false)", "SELECT PG_CATALOG.set_config('search_path', 'hr', false)"),
        // A NUL ends a MySQL comment.
        (SqlDialect::Mysql, "DELETE FROM customers # x\n WHERE id = 1", "DELETE FROM customers # \0\n WHERE id = 1"),
    ];

    #[test]
    fn texts_found_sharing_a_fingerprint_are_judged_as_fresh() {
        let policy = policy("pairs");
        for (dialect, a, b) in PAIRS {
            let snapshot = catalog(*dialect);
            let engine = || {
                let e = Arc::new(Engine::new(Some(policy.clone()), 64));
                e.set_catalog("app", snapshot.clone());
                e
            };
            let session = |e: &Arc<Engine>, user: &str, groups: &[String]| {
                let s = SessionPolicy::new(e.clone(), *dialect, user, groups, "app");
                match dialect {
                    SqlDialect::Mysql => s.confined_to("app"),
                    SqlDialect::Postgres => s,
                }
            };
            for (user, groups) in &identities() {
                let primed = engine();
                let _ = session(&primed, user, groups).judge(a.as_bytes());
                let cached = decided(&session(&primed, user, groups).judge(b.as_bytes()));
                let fresh = decided(&session(&engine(), user, groups).judge(b.as_bytes()));
                assert_eq!(cached, fresh, "{dialect:?} {user}: {a:?} then {b:?}");
            }
        }
    }

    #[test]
    fn a_cached_fingerprint_judges_every_literal_variant_as_a_fresh_parse() {
        let policy = policy("corpus");
        let identities = identities();
        let mut seed = 0x5eed_u64;
        let mut next = move |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let (mut compared, mut shared) = (0, 0);
        let mut failures = Vec::new();
        for dialect in [SqlDialect::Postgres, SqlDialect::Mysql] {
            let snapshot = catalog(dialect);
            let engine = |entries| {
                let e = Arc::new(Engine::new(Some(policy.clone()), entries));
                e.set_catalog("app", snapshot.clone());
                e
            };
            let session = |e: &Arc<Engine>, user: &str, groups: &[String]| {
                let s = SessionPolicy::new(e.clone(), dialect, user, groups, "app");
                match dialect {
                    SqlDialect::Mysql => s.confined_to("app"),
                    SqlDialect::Postgres => s,
                }
            };
            for sql in statements(dialect) {
                let Some(original) = rendered(dialect, sql, |_| "", false) else {
                    continue;
                };
                for _ in 0..3 {
                    let Some(variant) = rendered(
                        dialect,
                        sql,
                        |kind| {
                            let from = match kind {
                                Kind::Integer => INTEGERS,
                                Kind::Decimal => DECIMALS,
                                Kind::String => STRINGS,
                            };
                            from[next(from.len())]
                        },
                        true,
                    ) else {
                        continue;
                    };
                    if variant == original {
                        continue;
                    }
                    let primed = engine(64);
                    for (user, groups) in &identities {
                        let _ = session(&primed, user, groups).judge(original.as_bytes());
                        let before = primed.cache_counts().by_fingerprint;
                        let cached = session(&primed, user, groups).judge(variant.as_bytes());
                        shared += primed.cache_counts().by_fingerprint - before;
                        let fresh = session(&engine(64), user, groups).judge(variant.as_bytes());
                        let (c, f) = (decided(&cached), decided(&fresh));
                        if c != f {
                            failures.push(format!(
                                "{dialect:?} {user}: primed with\n  {original}\nvariant\n  {variant}\ncached:\n  {c}\nfresh:\n  {f}"
                            ));
                        }
                        compared += 1;
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {compared} variants judged differently from the cache:\n{}",
            failures.len(),
            failures
                .iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n\n")
        );
        assert!(compared > 5000, "{compared}");
        // The cache is exercised: a good share of variants was served by
        // fingerprint, not parsed.
        assert!(shared * 3 > compared, "{shared} of {compared} shared");
    }
}
