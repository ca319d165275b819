//! Every session recorded (issue 13), on MySQL/MariaDB: text-protocol
//! statements and multi-statement texts, prepared statements, refusals,
//! writes durable before they run.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use sqlgate::store::sqlite::SqliteStore;
use sqlgate::store::{Kind, StatementEvent, Store};

use crate::support::gateway::TestConfig;
use crate::support::mariadb;

fn statements(path: &std::path::Path) -> Vec<StatementEvent> {
    let mut store = SqliteStore::open(path).unwrap();
    let mut out = Vec::new();
    for id in store.session_ids().unwrap() {
        for r in store.rows(&id).unwrap() {
            if r.kind == Kind::Statement {
                out.push(serde_json::from_str(&r.body).unwrap());
            }
        }
    }
    out
}

#[tokio::test]
async fn statements_prepared_statements_and_refusals_are_recorded() {
    let my = mariadb::shared();
    let mut direct = Conn::new(Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    direct
        .query_drop("CREATE OR REPLACE TABLE rec_notes (id INT, note TEXT)")
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let store = config.path().join("sqlgate-recordings.db");
    let mut ci = Conn::new(Opts::from_url(&gw.mysql_url("ci", "ci-pw", "app")).unwrap())
        .await
        .unwrap();
    ci.query_drop("INSERT INTO rec_notes VALUES (1, 'text')")
        .await
        .unwrap();
    assert!(
        statements(&store)
            .iter()
            .any(|e| e.text == "INSERT INTO rec_notes VALUES (1, 'text')"
                && e.tags == ["write.insert"]),
        "the write's record is durable once it returns"
    );
    ci.exec_drop("INSERT INTO rec_notes VALUES (?, ?)", (2, "prepared"))
        .await
        .unwrap();
    assert!(statements(&store)
        .iter()
        .any(|e| e.text == "INSERT INTO rec_notes VALUES (?, ?)" && e.origin == "prepare"));
    let mut bot = Conn::new(Opts::from_url(&gw.mysql_url("bot", "bot-pw", "app")).unwrap())
        .await
        .unwrap();
    let _: Vec<i64> = bot.query("SELECT id FROM rec_notes").await.unwrap();
    bot.query_drop("DELETE FROM rec_notes").await.unwrap_err();
    ci.query_drop("SELECT * FROM rec_no_such_table")
        .await
        .unwrap_err();
    gw.running.recorder.as_ref().unwrap().flush();
    let outcomes: Vec<sqlgate::store::OutcomeEvent> = {
        let mut s = SqliteStore::open(&store).unwrap();
        let mut out = Vec::new();
        for id in s.session_ids().unwrap() {
            for r in s.rows(&id).unwrap() {
                if r.kind == Kind::Outcome {
                    out.push(serde_json::from_str(&r.body).unwrap());
                }
            }
        }
        out
    };
    assert!(
        outcomes
            .iter()
            .any(|o| o.tag.as_deref() == Some("OK") && o.rows == 1),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.tag.as_deref() == Some("ROWS") && o.rows == 2),
        "{outcomes:?}"
    );
    assert!(
        outcomes.iter().any(|o| o.code.as_deref() == Some("1146")),
        "{outcomes:?}"
    );
    let seen = statements(&store);
    assert!(seen
        .iter()
        .any(|e| e.text == "SELECT id FROM rec_notes" && e.verdict == "allow"));
    let delete = seen
        .iter()
        .find(|e| e.text == "DELETE FROM rec_notes")
        .expect("the refusal is recorded");
    assert_eq!(delete.verdict, "review");
    direct.query_drop("DROP TABLE rec_notes").await.unwrap();
}
