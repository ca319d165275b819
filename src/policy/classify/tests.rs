use super::*;

fn tags(dialect: SqlDialect, sql: &str) -> Vec<String> {
    classify_text(dialect, sql.as_bytes())
        .iter()
        .map(|s| s.risk.tags.to_string())
        .collect()
}

#[test]
fn each_statement_of_a_text_is_classified() {
    assert_eq!(
        tags(
            SqlDialect::Postgres,
            "select 1; delete from t; vacuum full t"
        ),
        [
            "read",
            "write.delete write.unbounded",
            "admin.maintenance ddl.blocking"
        ]
    );
}

#[test]
fn positions_point_at_the_statement() {
    let text = "select 1;\n  drop table t";
    let parts = classify_text(SqlDialect::Postgres, text.as_bytes());
    assert_eq!(parts[1].excerpt(text), "drop table t");
    assert_eq!(parts[1].start, 12);
}

#[test]
fn executable_comments_are_judged_by_their_content() {
    assert_eq!(
        tags(SqlDialect::Mysql, "select 1 /*! ; drop table t */"),
        ["read", "ddl.drop"]
    );
    assert_eq!(
        tags(SqlDialect::Postgres, "select 1 /*! ; drop table t */"),
        ["read"]
    );
}

#[test]
fn catalog_operators_are_builtins_and_custom_ones_code() {
    assert_eq!(
        tags(
            SqlDialect::Postgres,
            "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default"
        ),
        ["read"]
    );
    assert_eq!(
        tags(SqlDialect::Postgres, "SELECT a OPERATOR(evil.+) b FROM t"),
        ["code.function read"]
    );
}

#[test]
fn explain_analyze_runs_its_statement_in_every_spelling() {
    for sql in [
        "EXPLAIN ANALYZE DELETE FROM t",
        "EXPLAIN (ANALYZE) DELETE FROM t",
        "EXPLAIN (ANALYZE true, BUFFERS) DELETE FROM t",
        "explain (costs off, analyze on) delete from t",
    ] {
        assert_eq!(
            tags(SqlDialect::Postgres, sql),
            ["write.delete write.unbounded"],
            "{sql}"
        );
    }
    for sql in [
        "EXPLAIN DELETE FROM t",
        "EXPLAIN (ANALYZE false) DELETE FROM t",
    ] {
        assert_eq!(tags(SqlDialect::Postgres, sql), ["read"], "{sql}");
    }
}

#[test]
fn lexer_disagreements_are_unknown() {
    // PostgreSQL reads the continuation with E'' escapes: `\'` does
    // not end the string there, so the DROP would run.
    assert_eq!(
        tags(
            SqlDialect::Postgres,
            "SELECT E'a'\n'x\\', ' ; DROP TABLE t; -- '"
        ),
        ["unknown"]
    );
    assert_eq!(tags(SqlDialect::Postgres, "SELECT 'a'\n'b'"), ["read"]);
}

#[test]
fn unreadable_text_is_unknown() {
    assert_eq!(tags(SqlDialect::Postgres, "selec 1"), ["unknown"]);
    assert_eq!(
        tags(SqlDialect::Postgres, "select 'unterminated"),
        ["unknown"]
    );
    assert!(classify_text(SqlDialect::Postgres, b"  -- nothing\n").is_empty());
}

/// The dollar-quote hazard as it was first written, a character at a
/// time: the oracle of the faster search.
fn dollar_tag_hazard_oracle(text: &str) -> bool {
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '$' {
            continue;
        }
        let mut tag_has_non_ascii = false;
        while let Some(&(_, n)) = chars.peek() {
            if n == '$' {
                if tag_has_non_ascii {
                    return true;
                }
                break;
            }
            if !(n.is_alphanumeric() || n == '_' || !n.is_ascii()) {
                break;
            }
            tag_has_non_ascii |= !n.is_ascii() && !n.is_alphanumeric();
            chars.next();
        }
    }
    false
}

#[test]
fn a_dollar_tag_with_a_non_ascii_character_is_a_hazard_wherever_it_stands() {
    use rand::Rng;
    assert!(lexer_hazard(SqlDialect::Postgres, "select $→$ x $→$").is_some());
    assert!(lexer_hazard(SqlDialect::Postgres, "select $é$ x $é$").is_none());
    let pieces = [
        "$", "a", "_", "1", " ", "é", "→", "\u{a0}", "'", ";", "$$", "$a$",
    ];
    let mut rng = rand::rng();
    for _ in 0..20_000 {
        let text: String = (0..rng.random_range(0..12))
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        assert_eq!(
            lexer_hazard(SqlDialect::Postgres, &text).is_some(),
            dollar_tag_hazard_oracle(&text),
            "{text:?}"
        );
    }
}
