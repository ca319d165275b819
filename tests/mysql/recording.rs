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
        for r in sqlgate::store::events(&store.rows(&id).unwrap()) {
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
        .query_drop(
            "CREATE OR REPLACE TABLE rec_notes (id INT, note TEXT, born DATE); \
             INSERT INTO rec_notes VALUES (9, 'canaryzq77', '1970-01-02')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    // The notes are masked for everyone but ci: the recording keeps what
    // the client saw.
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.rec_notes.note\"]\nfunction = \"redact\"\nexcept_users = [\"ci\"]\n\
         [[mask]]\ncolumns = [\"app.rec_notes.born\"]\nfunction = { keep_last = 2 }\nexcept_users = [\"ci\"]\n",
    );
    let gw = config.start().await;
    gw.catalog_has("rec_notes").await;
    let store = config.path().join("sqlgate-recordings.db");
    let mut ci = Conn::new(Opts::from_url(&gw.mysql_url("ci", "ci-pw", "app")).unwrap())
        .await
        .unwrap();
    ci.query_drop("INSERT INTO rec_notes (id, note) VALUES (1, 'text')")
        .await
        .unwrap();
    assert!(
        statements(&store).iter().any(|e| e.text
            == "INSERT INTO rec_notes (id, note) VALUES (1, 'text')"
            && e.tags == ["write.insert"]),
        "the write's record is durable once it returns"
    );
    ci.exec_drop(
        "INSERT INTO rec_notes (id, note) VALUES (?, ?)",
        (2, "prepared"),
    )
    .await
    .unwrap();
    assert!(statements(&store).iter().any(|e| e.text
        == "INSERT INTO rec_notes (id, note) VALUES (?, ?)"
        && e.origin == "prepare"));
    // Its execution too, with its parameters, durable before it ran.
    assert!(
        statements(&store).iter().any(|e| e.origin == "execute"
            && e.text == "INSERT INTO rec_notes (id, note) VALUES (?, ?)"
            && e.parameters.is_some()),
        "a write's execution is durable once it returns"
    );
    let mut bot = Conn::new(Opts::from_url(&gw.mysql_url("bot", "bot-pw", "app")).unwrap())
        .await
        .unwrap();
    let _: Vec<i64> = bot.query("SELECT id FROM rec_notes").await.unwrap();
    // Masked results, text and binary protocol: recorded as the bot saw
    // them.
    let notes: Vec<(i64, String)> = bot
        .query("SELECT id, note FROM rec_notes ORDER BY id")
        .await
        .unwrap();
    assert!(notes.iter().all(|(_, n)| n != "canaryzq77"));
    let note: Option<String> = bot
        .exec_first("SELECT note FROM rec_notes WHERE id = ?", (9,))
        .await
        .unwrap();
    assert_ne!(note.as_deref(), Some("canaryzq77"));
    // A masked date in the binary protocol reaches the client as text:
    // recorded as the text it saw.
    let born: Option<String> = bot
        .exec_first("SELECT born FROM rec_notes WHERE id = ?", (9,))
        .await
        .unwrap();
    let born = born.expect("a masked value, as text");
    // An unmasked prepared result: its binary rows decoded by type.
    let ids: Vec<(i64, String)> = ci
        .exec(
            "SELECT id, note FROM rec_notes WHERE id < ? ORDER BY id",
            (3,),
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    bot.query_drop("DELETE FROM rec_notes").await.unwrap_err();
    ci.query_drop("SELECT * FROM rec_no_such_table")
        .await
        .unwrap_err();
    gw.running.recorder.as_ref().unwrap().flush();
    let outcomes: Vec<sqlgate::store::OutcomeEvent> = {
        let mut s = SqliteStore::open(&store).unwrap();
        let mut out = Vec::new();
        for id in s.session_ids().unwrap() {
            for r in sqlgate::store::events(&s.rows(&id).unwrap()) {
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
            .any(|o| o.tag.as_deref() == Some("ROWS") && o.rows == 3),
        "{outcomes:?}"
    );
    let results: Vec<_> = outcomes.iter().filter_map(|o| o.result.as_ref()).collect();
    let masked = results
        .iter()
        .find(|r| r.columns == ["id", "note"] && r.rows.len() == 3)
        .expect("the bot's text-protocol result is recorded");
    assert_eq!(masked.rows[2][0].as_deref(), Some("9"));
    assert_ne!(masked.rows[2][1].as_deref(), Some("canaryzq77"));
    assert!(
        results
            .iter()
            .any(|r| r.columns == ["note"] && r.rows.len() == 1),
        "the bot's binary-protocol result: {results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| r.columns == ["born"] && r.rows == [[Some(born.clone())]]),
        "the masked date as the bot saw it ({born}): {results:?}"
    );
    assert!(
        results.iter().any(|r| r.columns == ["id", "note"]
            && r.rows
                == [
                    [Some("1".to_owned()), Some("text".to_owned())],
                    [Some("2".to_owned()), Some("prepared".to_owned())]
                ]),
        "ci's binary rows decoded: {results:?}"
    );
    assert!(
        outcomes.iter().any(|o| o.code.as_deref() == Some("1146")),
        "{outcomes:?}"
    );
    let seen = statements(&store);
    assert!(seen
        .iter()
        .any(|e| e.text == "SELECT id FROM rec_notes" && e.verdict == "allow"));
    // Each execution, with its parameters.
    assert!(
        seen.iter().any(|e| e.origin == "execute"
            && e.text == "INSERT INTO rec_notes (id, note) VALUES (?, ?)"
            && e.parameters == Some(vec![Some("2".to_owned()), Some("prepared".to_owned())])),
        "{seen:?}"
    );
    // No masked value in any byte of the store (WAL included) nor in any
    // record as read back; the search sees what the sessions ran.
    let bytes = crate::support::recording::everything_stored(config.path());
    assert!(crate::support::recording::holds(
        &bytes,
        "SELECT id FROM rec_notes"
    ));
    assert!(!crate::support::recording::holds(&bytes, "canaryzq77"));
    let delete = seen
        .iter()
        .find(|e| e.text == "DELETE FROM rec_notes")
        .expect("the refusal is recorded");
    assert_eq!(delete.verdict, "review");
    direct.query_drop("DROP TABLE rec_notes").await.unwrap();
}

/// The mariadb client through the gateway: a multi-statement text and an
/// error, shown by the replay as the client saw them.
#[tokio::test]
async fn mariadb_client_sessions_replay() {
    let my = mariadb::shared();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let port = gw.mysql_port();
    let out =
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("mariadb")
            .args(["--no-defaults", "--host=127.0.0.1", "--user=ci", "--password=ci-pw"])
            .arg(format!("--port={port}"))
            .args([
                "app",
                "--force",
                "-e",
                "SELECT 42 AS answer, 'x' AS letter; SELECT 1/0 AS nothing; SELECT * FROM rec_none",
            ])
            .output()
            .unwrap()
        })
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("42"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = gw.running.recorder.clone().unwrap();
    let store = config.path().join("sqlgate-recordings.db");
    let id = crate::support::recording::ended_session(&rec, &store, "ci").await;
    let replay = crate::support::recording::replay(&config.write(), &id);
    for want in [
        "ci@app=> SELECT 42 AS answer, 'x' AS letter",
        " answer | letter\n--------+--------\n 42     | x\n(1 row)",
        "ci@app=> SELECT * FROM rec_none",
        "ERROR:  Table 'app.rec_none' doesn't exist (1146)",
    ] {
        assert!(replay.contains(want), "{want:?} in\n{replay}");
    }
}

/// With the store's disk full, a prepared write's execution is refused in
/// place with a clear error and does not run; the session goes on.
#[tokio::test]
async fn a_prepared_write_is_refused_when_its_execution_cannot_be_recorded() {
    let disk = crate::support::recording::SmallDisk::mount();
    let my = mariadb::shared();
    let mut direct = Conn::new(Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    direct
        .query_drop("CREATE OR REPLACE TABLE rec_full (n INT)")
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.toml.push_str(&format!(
        "\n[store]\npath = \"{}\"\n",
        disk.path().join("rec.db").display()
    ));
    let gw = config.start().await;
    let mut agent = Conn::new(
        Opts::from_url(&gw.mysql_url("agent", crate::support::gateway::AGENT_PW, "app")).unwrap(),
    )
    .await
    .unwrap();
    let insert = agent.prep("INSERT INTO rec_full VALUES (?)").await.unwrap();
    disk.fill_leaving(400 << 10);
    let pad = "x".repeat(16 << 10);
    let mut refused = None;
    for n in 0..200 {
        // Comments carry bulk so that the store fills.
        let sql = format!("INSERT INTO rec_full VALUES ({n}) /* {pad} */");
        if let Err(e) = agent.query_drop(sql).await {
            refused = Some(e);
            break;
        }
    }
    let e = refused.expect("the full disk refused a write");
    assert!(e.to_string().contains("could not record"), "{e}");
    let e = agent.exec_drop(&insert, (-7,)).await.unwrap_err();
    assert!(e.to_string().contains("could not record"), "{e}");
    let ran: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM rec_full WHERE n = -7")
        .await
        .unwrap();
    assert_eq!(ran, Some(0), "the refused execution did not run");
    // The session goes on.
    let one: Option<i64> = agent.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    direct.query_drop("DROP TABLE rec_full").await.unwrap();
}
