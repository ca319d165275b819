//! Recording prepared statements' executions (issue 13), on PostgreSQL:
//! each with the text the server prepared under its name, whatever Parse
//! sequence came before, and in the stored form that leaves out a named
//! statement's text (its definition holds it).

use sqlgate::store::sqlite::SqliteStore;
use sqlgate::store::Store;

use super::recording::statements;
use crate::support::gateway::{connect, Gateway, TestConfig};
use crate::support::pg;
use crate::support::raw::RawClient;

/// A gateway recording the example policy's `ci` user, a raw client of
/// it, and a fresh table `table` the client may write.
struct Recorded {
    direct: tokio_postgres::Client,
    /// Kept: the configuration's directory holds the store.
    config: TestConfig,
    gw: Gateway,
    store: std::path::PathBuf,
    c: RawClient,
}

async fn recorded(table: &str) -> Recorded {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int); \
             GRANT ALL ON {table} TO app_owner"
        ))
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let store = config.path().join("sqlgate-recordings.db");
    let (c, _) = RawClient::connect(gw.addr(), &[("user", "ci"), ("database", "app")], "ci-pw")
        .await
        .unwrap();
    Recorded {
        direct,
        config,
        gw,
        store,
        c,
    }
}

/// An execution is recorded with the text the server prepared under its
/// name: a second Parse of the name, which the server refuses, does not
/// take the name, nor does a Parse skipped after an error. An execution
/// sent before the Parse of its name was answered (pipelined) is marked
/// unconfirmed, and durable before it runs if its text can change
/// anything.
#[tokio::test]
async fn an_execution_is_recorded_with_the_text_the_server_prepared() {
    use super::protocol_state::{exchange, Script};
    let Recorded {
        direct,
        config: _config,
        gw,
        store,
        mut c,
    } = recorded("rec_pipe").await;
    let steps = [
        (
            Script::default()
                .parse("s1", "SELECT 'prepared first' AS what")
                .sync(),
            1,
            0,
        ),
        // Refused by the server: s1 exists.
        (
            Script::default()
                .parse("s1", "SELECT 'refused second' AS what")
                .sync(),
            1,
            1,
        ),
        // The Bind fails; the Parse after it is skipped.
        (
            Script::default()
                .bind("", "missing")
                .execute("", 0)
                .parse("s3", "SELECT 'skipped' AS what")
                .sync(),
            1,
            1,
        ),
        (
            Script::default()
                .bind("", "s1")
                .execute("", 0)
                .sync()
                .bind("", "s3")
                .execute("", 0)
                .sync(),
            2,
            1,
        ),
    ];
    for (script, readies, errors) in steps {
        let got = exchange(&mut c, script, readies).await;
        assert_eq!(got.iter().filter(|m| m.0 == b'E').count(), errors);
    }
    // Pipelined: the Bind goes out before the Parse is answered.
    let got = exchange(
        &mut c,
        Script::default()
            .parse("w", "INSERT INTO rec_pipe VALUES (7)")
            .bind("", "w")
            .execute("", 0)
            .sync(),
        1,
    )
    .await;
    assert!(got.iter().all(|m| m.0 != b'E'));
    // Durable before it ran: in the store with nothing flushed.
    let executed: Vec<(String, String)> = statements(&store)
        .into_iter()
        .filter(|(_, e)| e.origin.starts_with("execute"))
        .map(|(_, e)| (e.origin, e.text))
        .collect();
    assert!(
        executed.contains(&(
            "execute (unconfirmed)".to_owned(),
            "INSERT INTO rec_pipe VALUES (7)".to_owned()
        )),
        "{executed:?}"
    );
    // A named statement's executions reference a definition that holds
    // its text; the unnamed statement, parsed anew with new literals,
    // shares a definition by fingerprint and carries its texts.
    for script in [
        Script::default().bind("", "s1").execute("", 0).sync(),
        Script::default()
            .parse("", "SELECT 'u1' AS what")
            .bind("", "")
            .execute("", 0)
            .sync(),
        Script::default()
            .parse("", "SELECT 'u2' AS what")
            .bind("", "")
            .execute("", 0)
            .sync(),
    ] {
        let got = exchange(&mut c, script, 1).await;
        assert!(got.iter().all(|m| m.0 != b'E'));
    }
    drop(c);
    gw.running.recorder.as_ref().unwrap().flush();
    let mut lines = Vec::new();
    let mut raw = SqliteStore::open(&store).unwrap();
    for id in raw.session_ids().unwrap() {
        for r in raw.rows(&id).unwrap() {
            lines.extend(r.body.lines().map(str::to_owned));
        }
    }
    let mut texts_defined: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("definition\t"))
        .filter_map(|l| {
            serde_json::from_str::<sqlgate::store::Definition>(l.split_once('\t')?.1).ok()
        })
        .filter_map(|d| d.text)
        .collect();
    texts_defined.sort();
    assert_eq!(
        texts_defined,
        [
            "INSERT INTO rec_pipe VALUES (7)",
            "SELECT 'prepared first' AS what"
        ]
    );
    let compact = lines
        .iter()
        .filter(|l| {
            l.starts_with("statement\t") && l.contains("{\"d\":") && !l.contains("\"text\"")
        })
        .count();
    assert_eq!(compact, 3, "s1's two executions and w's: {lines:#?}");
    let executed: Vec<(String, String)> = statements(&store)
        .into_iter()
        .filter(|(_, e)| e.origin.starts_with("execute"))
        .map(|(_, e)| (e.origin, e.text))
        .collect();
    let execute = |t: &str| ("execute".to_owned(), t.to_owned());
    let unconfirmed = |t: &str| ("execute (unconfirmed)".to_owned(), t.to_owned());
    assert_eq!(
        executed,
        [
            execute("(prepared statement missing whose text was not kept)"),
            execute("SELECT 'prepared first' AS what"),
            execute("(prepared statement s3 whose text was not kept)"),
            (
                "execute (unconfirmed)".to_owned(),
                "INSERT INTO rec_pipe VALUES (7)".to_owned()
            ),
            execute("SELECT 'prepared first' AS what"),
            // (Bound before their Parse was answered.)
            unconfirmed("SELECT 'u1' AS what"),
            unconfirmed("SELECT 'u2' AS what"),
        ]
    );
    direct.batch_execute("DROP TABLE rec_pipe").await.unwrap();
}

/// A statement executed again and again, then parsed anew under the same
/// name (the unnamed statement, as most drivers use it): the executions
/// after the new Parse run the new text, and the recording says so — the
/// one bound before the Parse was answered as unconfirmed, both durable
/// before they ran, since the new text writes. (The session keeps the last
/// execution's text between executions; a Parse must make it look again.)
#[tokio::test]
async fn an_execution_after_its_name_was_parsed_again_is_recorded_with_the_new_text() {
    use super::protocol_state::{exchange, Script};
    let Recorded {
        direct,
        config: _config,
        gw,
        store,
        mut c,
    } = recorded("rec_again").await;
    let run = |script: Script| script.bind("", "").execute("", 0).sync();
    let steps = [
        Script::default().parse("", "SELECT 'again' AS what").sync(),
        run(Script::default()),
        run(Script::default()),
        // Pipelined: bound before the new Parse is answered.
        run(Script::default().parse("", "INSERT INTO rec_again VALUES (1)")),
        run(Script::default()),
    ];
    for script in steps {
        let got = exchange(&mut c, script, 1).await;
        assert!(got.iter().all(|m| m.0 != b'E'), "{got:?}");
    }
    let executed = || -> Vec<(String, String)> {
        statements(&store)
            .into_iter()
            .filter(|(_, e)| e.origin.starts_with("execute"))
            .map(|(_, e)| (e.origin, e.text))
            .collect()
    };
    let execute = |t: &str| ("execute".to_owned(), t.to_owned());
    let unconfirmed = |t: &str| ("execute (unconfirmed)".to_owned(), t.to_owned());
    // Durable before they ran: in the store with nothing flushed.
    let before_flush = executed();
    for write in [
        unconfirmed("INSERT INTO rec_again VALUES (1)"),
        execute("INSERT INTO rec_again VALUES (1)"),
    ] {
        assert!(before_flush.contains(&write), "{before_flush:?}");
    }
    drop(c);
    gw.running.recorder.as_ref().unwrap().flush();
    assert_eq!(
        executed(),
        [
            execute("SELECT 'again' AS what"),
            execute("SELECT 'again' AS what"),
            unconfirmed("INSERT INTO rec_again VALUES (1)"),
            execute("INSERT INTO rec_again VALUES (1)"),
        ]
    );
    // What the server ran: the two inserts.
    let rows = direct
        .query_one("SELECT count(*) FROM rec_again", &[])
        .await
        .unwrap();
    assert_eq!(rows.get::<_, i64>(0), 2);
    direct.batch_execute("DROP TABLE rec_again").await.unwrap();
}
