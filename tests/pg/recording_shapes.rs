//! A session's repeated statement shapes recorded as their literals
//! against a template (issue 13): what reads back is each text exactly as
//! the client sent it, through psql-style simple queries with literals of
//! every kind, several statements a text, and a template that stops
//! fitting.

use std::time::Duration;

use sqlgate::store::Store;

use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

#[tokio::test]
async fn repeated_shapes_read_back_exactly_as_sent() {
    let server = pg::shared();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let store = config.path().join("sqlgate-recordings.db");
    let ci = connect(&gw.conn_str("ci", "ci-pw", "app")).await;
    // Each text's statements, as they must read back.
    let mut sent: Vec<Vec<String>> = Vec::new();
    for i in 0..30u32 {
        let texts = [
            vec![format!("SELECT {i} AS n, 'plain{i}' AS s")],
            vec![format!(
                "SELECT * FROM (VALUES ({i}, 'v{i}')) AS v(a, b) WHERE a IN ({i}, {})",
                i + 2
            )],
            vec![format!("SELECT {i} AS n, 'it''s {i}' AS s")],
            vec![format!(
                "SELECT length('é→{}') + {}",
                "x".repeat(i as usize % 5),
                i * 1000
            )],
            vec![format!("SELECT -{i} WHERE {i} IN ({}, {i}, 7)", i + 1)],
            vec![format!("SELECT E'a\\n{i}'::text   /* keep */ ,  {i}.5")],
            // Two statements a text: each recorded on its own.
            vec![format!("SELECT {i}"), format!("SELECT 'b{i}'")],
        ];
        for statements in texts {
            ci.simple_query(&statements.join("; ")).await.unwrap();
            sent.push(statements);
        }
        // The same shape with other bytes outside its literals: another
        // shape, never this one's template.
        let spaced = format!("SELECT  {i} AS n, 'it''s {i}' AS s");
        ci.simple_query(&spaced).await.unwrap();
        sent.push(vec![spaced]);
    }
    // Forty texts that each come once push the plain shapes' notes out;
    // when the shapes come again, their templates are used again.
    let rounds: usize = sent.iter().map(Vec::len).sum();
    for k in 0..40 {
        let once = format!("SELECT 'once''{k}' AS o{k}");
        ci.simple_query(&once).await.unwrap();
        sent.push(vec![once]);
    }
    for i in 100..103 {
        let plain = format!("SELECT {i} AS n, 'plain{i}' AS s");
        ci.simple_query(&plain).await.unwrap();
        sent.push(vec![plain]);
    }
    drop(ci);
    let rec = gw.running.recorder.clone().expect("recording is on");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        rec.flush();
        let seen = super::recording::statements(&store);
        if seen.len() >= sent.iter().map(Vec::len).sum::<usize>() {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "statements never recorded"
        );
        tokio::task::yield_now().await;
    };
    let texts: Vec<&str> = recorded.iter().map(|(_, e)| e.text.as_str()).collect();
    let expected: Vec<String> = sent.into_iter().flatten().collect();
    // The connection's own setup comes first (its client encoding).
    let setup = texts.len().saturating_sub(expected.len());
    assert!(setup <= 1, "{texts:?}");
    assert_eq!(texts[setup..], expected);
    // Every text of a shape reads back with its first one's fields.
    let per_round = rounds / 30;
    let ours = &recorded[setup..];
    for (k, (_, e)) in ours[..rounds].iter().enumerate() {
        let (_, first) = &ours[k % per_round];
        assert_eq!(e.verdict, "allow", "{e:?}");
        assert_eq!(
            (&e.fingerprint, &e.tags, &e.rule, &e.origin),
            (&first.fingerprint, &first.tags, &first.rule, &first.origin),
            "{e:?}"
        );
    }
    // Most of them as their literals against a template.
    let mut raw = sqlgate::store::sqlite::SqliteStore::open(&store).unwrap();
    let (mut by_literals, mut templates) = (0, 0);
    for id in raw.session_ids().unwrap() {
        for row in raw.rows(&id).unwrap() {
            for l in row.body.lines() {
                by_literals +=
                    usize::from(l.starts_with("statement\t") && l.contains("\"literals\":["));
                templates +=
                    usize::from(l.starts_with("definition\t") && l.contains("\"template\":"));
            }
        }
    }
    // The plain shapes (the first two, and the two statements of one
    // text) from their third text on.
    assert!(
        by_literals >= 4 * 28,
        "the statements of repeated shapes are recorded as their literals ({by_literals})"
    );
    // One template a shape at most; a text the policy does not recall
    // as its shape (a doubled quote, non-ASCII) gets none. The policy
    // recalls five of the statement shapes (the plain one,
    // VALUES, the negative number, the two statements of one text): one
    // template each, the plain one's used again after its note went.
    assert!(
        (1..=5).contains(&templates),
        "{templates} templates for five recalled shapes"
    );
}
