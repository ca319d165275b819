//! What a masked identity sees of definitions and plans on PostgreSQL:
//! the definition or plan itself, readable, with its literals replaced —
//! never refused, never starred (issue 12). The canary corpus shows that
//! no literal leaks; this shows that what remains is useful.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

/// The first column of every row of a simple query.
async fn first_column(client: &Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_owned()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn definitions_and_plans_stay_readable_without_their_literals() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP VIEW IF EXISTS meta_vip; DROP TABLE IF EXISTS meta_people; \
             CREATE TABLE meta_people (id serial PRIMARY KEY, email text, \
                status text DEFAULT 'active', score int CHECK (score < 4711)); \
             CREATE VIEW meta_vip AS SELECT id, status FROM meta_people WHERE email = 'zqxmeta7@leak.test'; \
             GRANT ALL ON meta_people, meta_vip TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.meta_people.email\"]\nfunction = \"redact\"\nexcept_users = [\"ci\"]\n",
    );
    let gw = config.start().await;
    gw.catalog_has("meta_vip").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;

    let def = first_column(&bot, "SELECT pg_get_viewdef('meta_vip'::regclass, true)").await;
    assert_eq!(def.len(), 1);
    assert!(
        def[0].contains("meta_people.email = '?'::text") && !def[0].contains("zqxmeta7"),
        "{def:?}"
    );
    // Defaults keep their sequence names and types; values go.
    let defaults = first_column(
        &bot,
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d \
         WHERE d.adrelid = 'meta_people'::regclass ORDER BY d.adnum",
    )
    .await;
    assert_eq!(
        defaults,
        vec![
            "nextval('meta_people_id_seq'::regclass)".to_owned(),
            "'?'::text".to_owned()
        ]
    );
    let check = first_column(
        &bot,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'meta_people'::regclass AND contype = 'c'",
    )
    .await;
    assert_eq!(check, vec!["CHECK ((score < ?))".to_owned()]);

    // Plans: the plan, its numbers (costs, rows) kept, the view's
    // literal gone; in JSON too.
    let plan = first_column(&bot, "EXPLAIN SELECT * FROM meta_vip").await;
    assert!(plan[0].starts_with("Seq Scan on meta_people"), "{plan:?}");
    assert!(plan[0].contains("(cost="), "{plan:?}");
    assert!(
        plan.iter()
            .any(|l| l.contains("Filter: (email = '?'::text)")),
        "{plan:?}"
    );
    let json = first_column(&bot, "EXPLAIN (FORMAT JSON) SELECT * FROM meta_vip").await;
    let parsed: serde_json::Value = serde_json::from_str(&json[0]).expect("a JSON plan");
    assert_eq!(parsed[0]["Plan"]["Node Type"], "Seq Scan");
    assert_eq!(parsed[0]["Plan"]["Filter"], "(email = '?'::text)");
    assert!(parsed[0]["Plan"]["Total Cost"].is_number());
    // EXPLAIN ANALYZE of a statement that reads a masked column: the
    // plan, not starred.
    let analyzed = first_column(&bot, "EXPLAIN ANALYZE SELECT email FROM meta_people").await;
    assert!(
        analyzed[0].starts_with("Seq Scan on meta_people"),
        "{analyzed:?}"
    );

    // A condition on a definition asks about its literals: refused.
    let err = bot
        .simple_query("SELECT viewname FROM pg_views WHERE definition LIKE '%zqx%'")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("42501"));

    // Catalog queries that quote nothing pass as they are.
    let tables = first_column(
        &bot,
        "SELECT c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relname LIKE 'meta_%' AND c.relkind IN ('r', 'v') ORDER BY 1",
    )
    .await;
    assert_eq!(
        tables,
        vec!["meta_people".to_owned(), "meta_vip".to_owned()]
    );

    // An exempt identity reads definitions as they are.
    let ci = connect(&gw.conn_str("ci", "ci-pw", "app")).await;
    let clear = first_column(&ci, "SELECT pg_get_viewdef('meta_vip'::regclass, true)").await;
    assert!(clear[0].contains("zqxmeta7"), "{clear:?}");
    direct
        .batch_execute("DROP VIEW meta_vip; DROP TABLE meta_people")
        .await
        .unwrap();
}
