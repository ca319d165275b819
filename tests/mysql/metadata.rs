//! What a masked identity sees of definitions, columns and plans on
//! MySQL/MariaDB: the lists and definitions themselves, readable, with
//! the literals of definitions replaced — never starred (issue 12).

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Row};

use crate::support::gateway::TestConfig;
use crate::support::mariadb;

async fn conn(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap()).await.unwrap()
}

/// Every row, each cell as text.
async fn texts(c: &mut Conn, sql: &str) -> Vec<Vec<String>> {
    let rows: Vec<Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter()
        .map(|r| {
            r.unwrap()
                .into_iter()
                .map(|v| match v {
                    mysql_async::Value::NULL => "NULL".to_owned(),
                    mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => other.as_sql(true),
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn columns_definitions_and_plans_stay_readable_without_their_literals() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP VIEW IF EXISTS meta_vip; \
             CREATE OR REPLACE TABLE meta_people (id INT PRIMARY KEY, email VARCHAR(80), \
                status ENUM('active', 'gone') DEFAULT 'active', code VARCHAR(20) DEFAULT 'zqxdef7', \
                score INT CHECK (score < 4711)); \
             CREATE VIEW meta_vip AS SELECT id, status FROM meta_people WHERE email = 'zqxmeta7@leak.test'",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.meta_people.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("meta_vip").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;

    // DESCRIBE / SHOW COLUMNS: names, types and keys as they are (a
    // table with a masked column included); bare default values replaced.
    for sql in ["DESCRIBE meta_people", "SHOW COLUMNS FROM meta_people"] {
        let got = texts(&mut bot, sql).await;
        let want = texts(&mut direct, sql).await;
        assert_eq!(got.len(), want.len(), "{sql}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g[..4], w[..4], "{sql}");
            assert_eq!(g[5], w[5], "{sql}");
        }
        let defaults: Vec<&str> = got.iter().map(|r| r[4].as_str()).collect();
        assert_eq!(defaults, ["NULL", "NULL", "?", "?", "NULL"], "{sql}");
    }
    // SHOW CREATE TABLE: the type's value list stays, literals go.
    let create = texts(&mut bot, "SHOW CREATE TABLE meta_people").await;
    let ddl = &create[0][1];
    assert!(ddl.contains("enum('active','gone') DEFAULT '?'"), "{ddl}");
    assert!(
        ddl.contains("`score` < ?") && !ddl.contains("zqxdef7"),
        "{ddl}"
    );
    assert!(ddl.contains("varchar(80)"), "{ddl}");
    let view = texts(&mut bot, "SHOW CREATE VIEW meta_vip").await;
    assert_eq!(view[0][0], "meta_vip");
    assert!(
        view[0][1].contains("`meta_people`.`email` = '?'") && !view[0][1].contains("zqxmeta7"),
        "{:?}",
        view[0]
    );

    // Plans: the table form as it is; the JSON form parses, literals out.
    let got = texts(&mut bot, "EXPLAIN SELECT * FROM meta_vip").await;
    let want = texts(&mut direct, "EXPLAIN SELECT * FROM meta_vip").await;
    assert_eq!(got, want);
    let json = texts(&mut bot, "EXPLAIN FORMAT=JSON SELECT * FROM meta_vip").await;
    let plan: serde_json::Value = serde_json::from_str(&json[0][0]).expect("a JSON plan");
    assert!(plan["query_block"]["select_id"].is_number(), "{plan}");
    assert!(
        json[0][0].contains("\"attached_condition\": \"meta_people.email = '?'\"")
            && !json[0][0].contains("zqxmeta7"),
        "{plan}"
    );
    texts(&mut bot, "EXPLAIN EXTENDED SELECT id FROM meta_people").await;
    texts(&mut bot, "ANALYZE SELECT id FROM meta_people").await;

    // A WHERE on a SHOW of definitions is a question about them.
    let err = bot
        .query_drop("SHOW FULL COLUMNS FROM meta_people WHERE `Default` LIKE 'zqx%'")
        .await
        .unwrap_err();
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1142, "{}", e.message),
        other => panic!("{other:?}"),
    }
    direct
        .query_drop("DROP VIEW meta_vip; DROP TABLE meta_people")
        .await
        .unwrap();
}
