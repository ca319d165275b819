use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ShapeMemo;
use crate::policy::classify::lexer_hazard;
use crate::policy::engine::cache::placed;
use crate::policy::engine::Engine;
use crate::policy::explain_agreement::corpus_statements;
use crate::policy::fingerprint::{self, LiteralKind};
use crate::policy::parse::SqlDialect;

/// Texts with literals in several statements and places, beside the
/// corpora's.
const MORE: &[&str] = &[
    "SELECT abalance FROM pgbench_accounts WHERE aid = 51234;",
    "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5678;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (12, 3, 456789, -4321, CURRENT_TIMESTAMP);",
    "BEGIN; UPDATE t SET a = 'x y' WHERE id = 7; SELECT 'é', 2.5 FROM t;  COMMIT;",
    "SELECT * FROM t WHERE name = 'ab' AND n IN (1, 2, 3) ORDER BY 2 LIMIT 10",
    "SELECT 'a''b', 10 FROM t /* note é */ WHERE x = 'q' -- end\n",
    "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (1, 'a')",
    "SELECT 1",
    "SELECT 'x'",
    "SELECT 'é' AS \"é\", 3 -- x\r\n",
    "  SELECT 7  ;  SELECT 8.25  ",
    "SELECT * FROM t WHERE a = 'line one\nline two' ORDER BY 'x', 1",
];

/// Pieces a variant's literal, or an edit, is made of: digits, points,
/// quotes, and every byte a lexer or a hazard check treats apart.
const PIECES: &[&str] = &[
    "0",
    "7",
    "42",
    "123456789012345678",
    "1234567890123456789",
    ".",
    "'",
    "''",
    "a",
    "Z",
    " ",
    "\\",
    "$",
    "$$",
    "#",
    "--",
    "-- ",
    "/*",
    "*/",
    "!",
    "\"",
    "`",
    "e",
    "E",
    "x",
    "é",
    "€",
    "\0",
    "\n",
    ";",
    "(",
    ")",
    ",",
    "?",
    "%",
    "@",
    ":",
    "\t",
    "\r",
    "\r\n",
    "\u{b}",
    "\u{c}",
    "\u{7f}",
    "\u{1a}",
    "\u{a0}",
    "\u{2028}",
    "{",
    "}",
    "[",
    "]",
    "&",
    "|",
    "^",
    "~",
    "<",
    ">",
    "=",
    "+",
    "_",
    "N",
    "B",
    "X",
    "_utf8",
    "U&",
    "1e5",
    "0x1F",
];

fn piece(rng: &mut StdRng) -> &'static str {
    PIECES[rng.random_range(0..PIECES.len())]
}

/// A literal of `kind` (or, at times, of none: anything).
fn literal(rng: &mut StdRng, kind: LiteralKind) -> String {
    let digits = |rng: &mut StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    match (rng.random_range(0..6), kind) {
        (0, _) => (0..rng.random_range(0..4)).map(|_| piece(rng)).collect(),
        (_, LiteralKind::Integer) => {
            let n = rng.random_range(1..22);
            digits(rng, n)
        }
        (_, LiteralKind::Decimal) => {
            let (a, b) = (rng.random_range(0..10), rng.random_range(0..10));
            format!("{}.{}", digits(rng, a), digits(rng, b))
        }
        (_, LiteralKind::String) => {
            let inside: String = (0..rng.random_range(0..5))
                .map(|_| {
                    if rng.random_bool(0.7) {
                        "plain text"
                    } else {
                        piece(rng)
                    }
                })
                .collect();
            format!("'{inside}'")
        }
    }
}

/// `text` with each literal replaced, and up to two pieces inserted or
/// bytes removed near literals' edges.
fn variant(rng: &mut StdRng, text: &str, literals: &[fingerprint::Literal]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0;
    for l in literals {
        out.extend_from_slice(&text.as_bytes()[from..l.bytes.start]);
        if rng.random_bool(0.8) {
            out.extend_from_slice(literal(rng, l.kind).as_bytes());
        } else {
            out.extend_from_slice(&text.as_bytes()[l.bytes.clone()]);
        }
        from = l.bytes.end;
    }
    out.extend_from_slice(&text.as_bytes()[from..]);
    for _ in 0..rng.random_range(0..3) {
        if literals.is_empty() {
            break;
        }
        // Near an edge of a literal (in the original's positions: the
        // variant's are close enough to hit edges often).
        let l = &literals[rng.random_range(0..literals.len())];
        let edge = if rng.random_bool(0.5) {
            l.bytes.start
        } else {
            l.bytes.end
        };
        let at = (edge + rng.random_range(0..5))
            .saturating_sub(2)
            .min(out.len());
        if rng.random_bool(0.5) {
            let p = piece(rng).as_bytes().to_vec();
            out.splice(at..at, p);
        } else if at < out.len() {
            out.remove(at);
        }
    }
    out
}

/// The memo's oracle: a text it recalls has the remembered text's exact
/// fingerprint, no lexer hazard, and the classification the engine's
/// cache would serve it (the shared entry at its own spans).
#[test]
fn a_recalled_shape_is_what_the_cache_would_serve_for_every_variant() {
    let mut rng = StdRng::seed_from_u64(0x5ba9e);
    let (mut tried, mut recalled) = (0, 0);
    for dialect in [SqlDialect::Postgres, SqlDialect::Mysql] {
        let engine = Arc::new(Engine::new(None, 4096));
        let mut texts = corpus_statements(dialect);
        texts.extend_from_slice(MORE);
        for text in texts {
            let (classified, shape) = engine.classify_shaped(dialect, text.as_bytes());
            let Some(f) = shape else { continue };
            let mut memo = ShapeMemo::default();
            memo.remember(text.as_bytes(), &f, &classified);
            for _ in 0..40 {
                let v = variant(&mut rng, text, &f.literals);
                tried += 1;
                let Some(got) = memo.recall(&v) else { continue };
                recalled += 1;
                let shown = String::from_utf8_lossy(&v);
                let v = std::str::from_utf8(&v)
                    .unwrap_or_else(|_| panic!("{dialect:?}: recalled non-UTF-8 {shown:?}"));
                assert_eq!(lexer_hazard(dialect, v), None, "{dialect:?}: {v:?}");
                let fv = fingerprint::of(dialect, v);
                assert!(fv.exact, "{dialect:?}: recalled an inexact text {v:?}");
                assert_eq!(fv.key, f.key, "{dialect:?}: {text:?} recalled for {v:?}");
                let served = placed(&classified, &fv).expect("as many statements");
                assert_eq!(
                    *got, *served,
                    "{dialect:?}: {text:?} then {v:?}: spans or classification differ"
                );
            }
        }
    }
    // The memo is exercised: most variants keep their literals' kinds.
    assert!(recalled * 3 > tried, "{recalled} of {tried} recalled");
}

#[test]
fn a_session_judges_its_repeated_shapes_as_a_fresh_session_would() {
    use crate::policy::engine::SessionPolicy;
    let engine = Arc::new(Engine::new(None, 64));
    let mut session = SessionPolicy::new(engine.clone(), SqlDialect::Postgres, "u", &[], "t");
    let texts = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 5;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 512345;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = '5';",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 5 OR 1 = 1;",
        "DELETE FROM pgbench_accounts WHERE aid = 12;",
        "DELETE FROM pgbench_accounts WHERE aid = 12345; DELETE FROM pgbench_accounts",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 77;",
    ];
    for text in texts {
        let fresh = SessionPolicy::new(
            Arc::new(Engine::new(None, 64)),
            SqlDialect::Postgres,
            "u",
            &[],
            "t",
        )
        .judge_statements(text.as_bytes(), false);
        let judged = session.judge_statements(text.as_bytes(), false);
        let tags = |r: &[Result<super::super::Judged, super::super::Refusal>]| {
            r.iter()
                .map(|j| match j {
                    Ok(j) => format!("{:?} {}..{}", j.tags, j.statement.start, j.statement.end),
                    Err(e) => e.message.clone(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(tags(&judged), tags(&fresh), "{text}");
    }
    // The repeated selects were served by the session's shapes, not the
    // engine's cache (which counts what it serves at once), and are
    // counted when the session ends.
    assert_eq!(engine.cache_counts().by_fingerprint, 0);
    drop(session);
    assert!(
        engine.cache_counts().by_fingerprint >= 2,
        "{:?}",
        engine.cache_counts()
    );
}

#[test]
fn a_repeated_shape_reaches_what_its_first_text_reached() {
    use crate::policy::engine::SessionPolicy;
    let engine = Arc::new(Engine::new(None, 64));
    let mut session =
        SessionPolicy::new(engine, SqlDialect::Mysql, "u", &[], "t").confined_to("app");
    for (text, refused) in [
        ("SELECT c FROM other.t WHERE id = 1", true),
        ("SELECT c FROM other.t WHERE id = 22", true),
        ("SELECT c FROM app.t WHERE id = 3", false),
        ("SELECT c FROM app.t WHERE id = 44", false),
        ("SELECT other.f(c) FROM t WHERE id = 5", true),
        ("SELECT other.f(c) FROM t WHERE id = 66", true),
        ("USE other", true),
        ("USE other", true),
    ] {
        let judged = session.judge(text.as_bytes());
        assert_eq!(judged.is_err(), refused, "{text}: {judged:?}");
    }
}

/// More shapes than a session remembers, in a shuffled order: each
/// recall (after moves forward and evictions) keeps its own shape's
/// classification and reach.
#[test]
fn shapes_moved_forward_and_evicted_keep_their_own_findings() {
    use crate::policy::engine::SessionPolicy;
    let engine = Arc::new(Engine::new(None, 64));
    let mut session =
        SessionPolicy::new(engine, SqlDialect::Mysql, "u", &[], "t").confined_to("app");
    let mut rng = StdRng::seed_from_u64(0x0e71c7);
    for _ in 0..2000 {
        let column = rng.random_range(0..24);
        let outside = rng.random_bool(0.5);
        let db = if outside { "other" } else { "app" };
        let id = rng.random_range(0..1_000_000);
        let text = format!("SELECT c{column} FROM {db}.t WHERE id = {id}");
        let judged = session.judge_statements(text.as_bytes(), false);
        assert_eq!(judged[0].is_err(), outside, "{text}");
        if let Ok(j) = &judged[0] {
            assert_eq!(j.statement.bytes, 0..text.len(), "{text}");
            assert_eq!(j.statement.end, text.len(), "{text}");
        }
    }
}

/// A session cycling through sysbench's read-only mix (five queries over
/// four tables, each with new literals) has every text recalled once
/// each shape was seen: no shape is evicted by the others.
#[test]
fn a_session_cycling_through_sysbenchs_read_only_mix_recalls_every_shape() {
    let engine = Arc::new(Engine::new(None, 64));
    let dialect = SqlDialect::Mysql;
    let mut rng = StdRng::seed_from_u64(0x5b);
    let mut memo = ShapeMemo::default();
    for round in 0..4 {
        for table in 1..=4 {
            let (a, b) = (rng.random_range(1..5000), rng.random_range(5000..10000));
            for text in [
                format!("SELECT c FROM sbtest{table} WHERE id={a}"),
                format!("SELECT c FROM sbtest{table} WHERE id BETWEEN {a} AND {b}"),
                format!("SELECT SUM(k) FROM sbtest{table} WHERE id BETWEEN {a} AND {b}"),
                format!("SELECT c FROM sbtest{table} WHERE id BETWEEN {a} AND {b} ORDER BY c"),
                format!(
                    "SELECT DISTINCT c FROM sbtest{table} WHERE id BETWEEN {a} AND {b} ORDER BY c"
                ),
            ] {
                let recalled = memo.recall(text.as_bytes()).is_some();
                if round > 0 {
                    assert!(recalled, "round {round}: {text} was not recalled");
                } else if !recalled {
                    let (classified, shape) = engine.classify_shaped(dialect, text.as_bytes());
                    let f = shape.expect("an exact shape");
                    memo.remember(text.as_bytes(), &f, &classified);
                }
            }
        }
    }
}

/// Texts without literals (`BEGIN`, `COMMIT`) and texts whose
/// classification is their own (an always-true condition, an encoding)
/// are kept whole:
/// the same bytes are recalled, with the classification a fresh one
/// gives; any other bytes are not.
#[test]
fn texts_kept_whole_are_recalled_for_the_same_bytes_only() {
    use crate::policy::engine::SessionPolicy;
    let engine = Arc::new(Engine::new(None, 64));
    let mut session = SessionPolicy::new(engine.clone(), SqlDialect::Mysql, "u", &[], "t");
    let texts = [
        "BEGIN",
        "DELETE FROM t WHERE 1 = 1",
        "DELETE FROM t WHERE 1 = 2",
        "SET NAMES 'latin1'",
        "SET NAMES 'utf8mb4'",
        "COMMIT",
        "ROLLBACK",
    ];
    let fresh_engine = Engine::new(None, 64);
    let mut ids = std::collections::HashMap::new();
    for round in 0..3 {
        for text in texts {
            let fresh = fresh_engine.classify(SqlDialect::Mysql, text.as_bytes());
            let judged = session.judge_statements(text.as_bytes(), false);
            let shape = session.shape().expect("a text kept whole has a shape");
            assert!(shape.literals.is_empty(), "{text}: {:?}", shape.literals);
            let id = *ids.entry(text).or_insert(shape.id);
            assert_eq!(
                shape.id, id,
                "round {round}: {text} recalled as another text"
            );
            let got: Vec<_> = judged
                .iter()
                .map(|j| j.as_ref().map(|j| j.tags).map_err(|e| e.message.clone()))
                .collect();
            let want: Vec<_> = fresh.iter().map(|s| s.risk.tags).collect();
            assert_eq!(got.len(), want.len(), "{text}");
            for (g, w) in got.iter().zip(&want) {
                if let Ok(g) = g {
                    assert_eq!(g, w, "round {round}: {text}");
                }
            }
        }
    }
    drop(session);
    // Two rounds of seven texts recalled whole: served by text, not by a
    // fingerprint.
    let counts = engine.cache_counts();
    assert_eq!(counts.by_text, 14, "{counts:?}");
    assert_eq!(counts.by_fingerprint, 0, "{counts:?}");
}
