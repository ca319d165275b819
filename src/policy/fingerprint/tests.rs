//! The fingerprint's keys, exactness and spans, and a lexing fuzz
//! against sqlparser.

use super::*;

const PG: SqlDialect = SqlDialect::Postgres;
const MY: SqlDialect = SqlDialect::Mysql;

fn key(d: SqlDialect, text: &str) -> String {
    of(d, text).key
}

#[test]
fn values_spacing_and_comments_do_not_count() {
    let a = key(
        PG,
        "SELECT * FROM t WHERE id IN (1, 2, 3) AND name = 'ann' -- hi\n;",
    );
    let b = key(
        PG,
        "SELECT *  FROM t /* x */ WHERE id IN (7)\n AND name = 'bob'",
    );
    assert_eq!(a, "SELECT * FROM t WHERE id IN (?) AND name = '?'");
    assert_eq!(a, b);
    assert_ne!(
        key(PG, "SELECT \"Name\" FROM t"),
        key(PG, "SELECT name FROM t")
    );
    // Case is kept (MySQL's names may be case-sensitive).
    assert_ne!(
        key(MY, "SELECT * FROM Users"),
        key(MY, "SELECT * FROM users")
    );
    assert_ne!(key(PG, "select 1"), key(PG, "SELECT 1"));
}

#[test]
fn lists_of_values_share_a_fingerprint_and_arity_does_not() {
    assert_eq!(
        key(PG, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
        "INSERT INTO t VALUES (?, '?')"
    );
    assert_eq!(
        key(PG, "SELECT 1 WHERE x IN (1, 'a') OR y IN (1.5, 2.5)"),
        "SELECT ? WHERE x IN (?, '?') OR y IN (?.?)"
    );
    assert_ne!(
        key(PG, "INSERT INTO t VALUES (1, 2)"),
        key(PG, "INSERT INTO t VALUES (1)")
    );
    assert_ne!(key(PG, "SELECT f(1, 2)"), key(PG, "SELECT f(1)"));
    assert_eq!(
        key(PG, "SELECT ((1), (2))"),
        "SELECT ((?), (?))",
        "a row is not a VALUES list"
    );
    assert_eq!(
        key(PG, "SELECT 1 WHERE x IN (SELECT y FROM z WHERE w IN (1,2))"),
        "SELECT ? WHERE x IN (SELECT y FROM z WHERE w IN (?))"
    );
    assert_eq!(
        key(PG, "SELECT 1 WHERE x IN (a, 2)"),
        "SELECT ? WHERE x IN (a, ?)"
    );
}

#[test]
fn output_positions_stay() {
    for (d, a, b) in [
        (
            PG,
            "SELECT a, b FROM t ORDER BY 1",
            "SELECT a, b FROM t ORDER BY 2",
        ),
        // A nested ORDER BY ends at its `)`, not the outer list.
        (
            PG,
            "SELECT a, b FROM t ORDER BY (SELECT 1 ORDER BY 1), 1",
            "SELECT a, b FROM t ORDER BY (SELECT 1 ORDER BY 1), 2",
        ),
        // Names that look like clause words do not end the list.
        (
            MY,
            "SELECT a, b FROM t ORDER BY @offset, 1",
            "SELECT a, b FROM t ORDER BY @offset, 2",
        ),
        (
            MY,
            "SELECT a, b FROM t ORDER BY offset, 1",
            "SELECT a, b FROM t ORDER BY offset, 2",
        ),
        (
            PG,
            "SELECT a FROM t c ORDER BY c.limit, 1",
            "SELECT a FROM t c ORDER BY c.limit, 2",
        ),
    ] {
        assert_ne!(key(d, a), key(d, b), "{a}");
    }
    assert_eq!(
        key(PG, "SELECT a, b FROM t GROUP BY 1, 2 LIMIT 5"),
        "SELECT a, b FROM t GROUP BY 1, 2 LIMIT ?"
    );
}

#[test]
fn what_readers_may_lex_differently_is_inexact() {
    for (d, text) in [
        (PG, "SELECT E'a\\'b'"),
        (PG, "SELECT 'a\\'"),
        (PG, "SELECT $$x$$"),
        (PG, "SELECT 1e5"),
        (PG, "SELECT .5"),
        (PG, "SELECT x'ff'"),
        (PG, "SELECT data ? 'k'"),
        (PG, "SELECT /* a /* b */ c */ 1"),
        (PG, "SELECT 'unterminated"),
        (PG, "SELECT naïve FROM t"),
        (MY, "SELECT \"x\""),
        (MY, "SELECT 1 /*!50000 , 2 */"),
        (MY, "SELECT 1 --x"),
        (MY, "SELECT 0x1F"),
        (MY, "SELECT 'a\\'b'"),
        (PG, "SELECT x::varchar(1234567890123456789012)"),
        (PG, "SELECT 1, /* /*/ ' */ */ 1"),
        (MY, "SELECT 1, /* /*/ ' */ */ 1"),
        (MY, "SELECT 1 -- a\r; DROP TABLE t"),
        (MY, "DELETE FROM t # \0\n WHERE id = 1"),
    ] {
        assert!(!of(d, text).exact, "{text}");
    }
    for (d, text) in [
        (PG, "SELECT 'naïve', $1 FROM t -- é\n WHERE a = 1.5"),
        (MY, "SELECT `a` FROM t # c\n WHERE b = 'x''y' -- z"),
    ] {
        assert!(of(d, text).exact, "{text}");
    }
}

#[test]
fn statement_spans_are_the_classifiers() {
    use crate::policy::classify::classify_text;
    for (d, text) in [
        (PG, "SELECT 'é' ; /* c */ SELECT 2 -- x\n ;; \n"),
        (PG, "  SELECT 1"),
        (PG, "SELECT 1 --\r; SELECT 2"),
        (MY, "SELECT 1; # c\nDELETE FROM t WHERE a = 'ü' "),
    ] {
        let f = of(d, text);
        assert!(f.exact, "{text}");
        let classified: Vec<Shape> = classify_text(d, text.as_bytes())
            .into_iter()
            .map(|s| Shape {
                start: s.start,
                end: s.end,
                bytes: s.bytes,
            })
            .collect();
        assert_eq!(f.statements, classified, "{text}");
    }
}

/// The key sqlparser's tokens give a text, by the key's rules
/// (literals as placeholders, no spaces): what an exact fingerprint
/// must agree with.
fn tokens_key(d: SqlDialect, text: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token as T, Tokenizer};
    let tokens = Tokenizer::new(d.dialect(), text).tokenize().ok()?;
    let mut out = String::new();
    for t in tokens {
        match t {
            T::Whitespace(_) => {}
            T::SingleQuotedString(_) => out.push_str(STRING),
            T::Number(n, _) if n.contains('.') => out.push_str(DECIMAL),
            T::Number(..) => out.push_str(INTEGER),
            T::Word(w) => match w.quote_style {
                Some(q) => {
                    let doubled: String = [q, q].iter().collect();
                    out.push(q);
                    out.push_str(&w.value.replace(q, &doubled));
                    out.push(q);
                }
                None => out.push_str(&w.value),
            },
            other => out.push_str(&other.to_string()),
        }
    }
    Some(out.trim_end_matches(';').to_owned())
}

#[test]
fn exact_fingerprints_lex_as_sqlparser_does() {
    // Texts over an alphabet of lexing hazards: where the scanner
    // calls a fingerprint exact, sqlparser must see the same tokens
    // and the same literals.
    let alphabet: Vec<char> = "'\"`$-/*#\r\n eE01.x;(),a\\?\u{e9}\u{0}&:N+"
        .chars()
        .collect();
    let mut seed = 11u64;
    let mut exact = 0;
    for _ in 0..60_000 {
        let mut text = String::new();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        for _ in 0..(seed >> 60) + 2 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
        }
        for d in [PG, MY] {
            let f = of(d, &text);
            if !f.exact {
                continue;
            }
            exact += 1;
            let scanned: String = f.key.chars().filter(|c| *c != ' ').collect();
            let tokens = tokens_key(d, &text).map(|k| k.replace(' ', ""));
            assert_eq!(
                Some(scanned.trim_end_matches(';').to_owned()),
                tokens,
                "{d:?} {text:?}"
            );
        }
    }
    assert!(exact > 5_000, "{exact}");
}
