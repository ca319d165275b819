//! Every session recorded (issue 13), on PostgreSQL: statements with
//! their verdicts and tags through the simple and extended protocols,
//! refusals, writes durable before they run (also across `kill -9`), a
//! trail that verifies, and no secret in the store's bytes.

use std::process::Command;
use std::time::Duration;

use sqlgate::store::sqlite::SqliteStore;
use sqlgate::store::{Kind, StatementEvent, Store};

use crate::support::binary::GatewayProcess;
use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

/// Every outcome of every session in the store.
fn outcomes(path: &std::path::Path) -> Vec<sqlgate::store::OutcomeEvent> {
    let mut store = SqliteStore::open(path).unwrap();
    let mut out = Vec::new();
    for id in store.session_ids().unwrap() {
        for r in sqlgate::store::events(&store.rows(&id).unwrap()) {
            if r.kind == Kind::Outcome {
                out.push(serde_json::from_str(&r.body).unwrap());
            }
        }
    }
    out
}

/// The admin listener's `/metrics`.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: sqlgate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

/// Every statement event of every session in the store.
pub(super) fn statements(path: &std::path::Path) -> Vec<(String, StatementEvent)> {
    let mut store = SqliteStore::open(path).unwrap();
    let mut out = Vec::new();
    for id in store.session_ids().unwrap() {
        for r in sqlgate::store::events(&store.rows(&id).unwrap()) {
            if r.kind == Kind::Statement {
                out.push((id.clone(), serde_json::from_str(&r.body).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn statements_verdicts_and_refusals_are_recorded_and_writes_before_they_run() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS rec_notes; CREATE TABLE rec_notes (id int, note text); \
             GRANT ALL ON rec_notes TO app_owner; \
             INSERT INTO rec_notes VALUES (9, 'canaryzq77')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    // The notes are masked for everyone but ci: the recording keeps what
    // the client saw.
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.rec_notes.note\"]\nfunction = \"redact\"\nexcept_users = [\"ci\"]\n",
    );
    let gw = config.start().await;
    let store = config.path().join("sqlgate-recordings.db");

    let ci = connect(&gw.conn_str("ci", "ci-pw", "app")).await;
    ci.simple_query("INSERT INTO rec_notes VALUES (1, 'simple')")
        .await
        .unwrap();
    // Durable before it ran: in the store now, with nothing flushed.
    let seen = statements(&store);
    let insert = seen
        .iter()
        .find(|(_, e)| e.text == "INSERT INTO rec_notes VALUES (1, 'simple')")
        .expect("the write's record is durable once it returns");
    assert_eq!(insert.1.verdict, "allow");
    assert_eq!(insert.1.tags, ["write.insert"]);
    assert_eq!(
        insert.1.fingerprint,
        "INSERT INTO rec_notes VALUES (?, '?')"
    );
    ci.execute(
        "INSERT INTO rec_notes VALUES ($1, $2)",
        &[&2i32, &"extended"],
    )
    .await
    .unwrap();
    assert!(statements(&store)
        .iter()
        .any(|(_, e)| e.text == "INSERT INTO rec_notes VALUES ($1, $2)" && e.origin == "parse"));
    // Its execution too, with its parameters, durable before it ran.
    assert!(
        statements(&store).iter().any(|(_, e)| e.origin == "execute"
            && e.text == "INSERT INTO rec_notes VALUES ($1, $2)"
            && e.parameters.is_some()),
        "a write's execution is durable once it returns"
    );

    // Each execution of a prepared statement, with its parameters
    // (tokio-postgres binds them in binary: shown as hex).
    let rows = ci
        .query("SELECT id FROM rec_notes WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    ci.simple_query("SELECT 1/0").await.unwrap_err();
    // A repeated shape is scanned for credential words once away from its
    // literals: a credential word in a later text's literal, or one beside
    // the literals of every text of the shape, still takes them out.
    for text in [
        "SELECT count(*) FROM rec_notes WHERE note = 'zqplain1'",
        "SELECT count(*) FROM rec_notes WHERE note = 'password'",
        "SELECT count(*) FROM rec_notes WHERE note = 'zqkey2' /* password */",
        "SELECT count(*) FROM rec_notes WHERE note = 'zqkey3' /* password */",
    ] {
        ci.simple_query(text).await.unwrap();
    }
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    bot.simple_query("SELECT count(*) FROM rec_notes; SELECT 1")
        .await
        .unwrap();
    // Masked results, simple and extended: recorded as the bot saw them.
    let seen_by_bot = bot
        .simple_query("SELECT id, note FROM rec_notes ORDER BY id")
        .await
        .unwrap();
    assert!(!format!("{seen_by_bot:?}").contains("canaryzq77"));
    let note: String = bot
        .query_one("SELECT note FROM rec_notes WHERE id = $1", &[&9i32])
        .await
        .unwrap()
        .get(0);
    assert_ne!(note, "canaryzq77");
    let refused = bot.simple_query("DELETE FROM rec_notes").await.unwrap_err();
    assert_eq!(refused.as_db_error().unwrap().code().code(), "42501");
    // A statement that carries a password (refused here: dcl) is recorded
    // without it.
    bot.simple_query("ALTER USER app_owner PASSWORD 'zqxsecret9'")
        .await
        .unwrap_err();
    drop(bot);
    drop(ci);
    // Reads and session ends are group-committed: flushed here.
    let rec = gw
        .running
        .recorder
        .clone()
        .expect("recording is on by default");
    // The sessions' ends arrive as their tasks finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        rec.flush();
        let mut s = SqliteStore::open(&store).unwrap();
        let ended = s
            .sessions()
            .unwrap()
            .iter()
            .filter(|s| s.ended_us.is_some())
            .count();
        if ended >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "sessions never ended");
        tokio::task::yield_now().await;
    }
    let seen = statements(&store);
    assert!(
        seen.iter()
            .any(|(_, e)| e.text == "SELECT count(*) FROM rec_notes WHERE note = 'zqplain1'"),
        "a text without a credential word is recorded as sent"
    );
    for (_, e) in &seen {
        for kept in ["'password'", "zqkey2", "zqkey3"] {
            assert!(!e.text.contains(kept), "{e:?}");
        }
    }
    for text in ["SELECT count(*) FROM rec_notes", "SELECT 1"] {
        assert!(
            seen.iter()
                .any(|(_, e)| e.text == text && e.verdict == "allow"),
            "{text}"
        );
    }
    // The deciding rule and the masked columns.
    let (_, masked) = seen
        .iter()
        .find(|(_, e)| e.text == "SELECT id, note FROM rec_notes ORDER BY id")
        .unwrap();
    assert_eq!(masked.masked_columns.len(), 1, "{masked:?}");
    assert!(masked.masked_columns[0].starts_with("note ("), "{masked:?}");
    assert!(
        masked
            .rule
            .as_deref()
            .is_some_and(|r| r.contains("agents-read-only")),
        "{masked:?}"
    );
    let (_, delete) = seen
        .iter()
        .find(|(_, e)| e.text == "DELETE FROM rec_notes")
        .expect("the refusal is recorded");
    assert_eq!(delete.verdict, "review");
    assert!(
        delete.refusal.as_deref().unwrap_or("").contains("write"),
        "{delete:?}"
    );

    // What the server made of them, in the order it answered.
    let outcomes = outcomes(&store);
    for want in [("INSERT 0 1", 1), ("SELECT 1", 1)] {
        assert!(
            outcomes
                .iter()
                .any(|o| o.tag.as_deref() == Some(want.0) && o.rows == want.1),
            "{want:?} in {outcomes:?}"
        );
    }
    assert!(
        outcomes.iter().any(|o| o.code.as_deref() == Some("22012")
            && o.message.as_deref() == Some("division by zero")),
        "{outcomes:?}"
    );

    // The executions, with their parameters.
    let executed = seen
        .iter()
        .find(|(_, e)| e.origin == "execute" && e.text == "SELECT id FROM rec_notes WHERE id = $1")
        .expect("the execution is recorded");
    assert_eq!(
        executed.1.parameters,
        Some(vec![Some("\\x00000001".to_owned())])
    );
    assert!(seen.iter().any(|(_, e)| e.origin == "execute"
        && e.text == "INSERT INTO rec_notes VALUES ($1, $2)"
        && e.parameters
            == Some(vec![
                Some("\\x00000002".to_owned()),
                Some("extended".to_owned())
            ])));
    // The first rows of results as the clients saw them: masked for the
    // bot, in the simple and the extended protocol.
    // Bytes of the answer the client got, that statement's alone:
    // `SELECT 1` of a two-statement text is RowDescription (34),
    // DataRow (12) and CommandComplete (14).
    let select_1 = outcomes
        .iter()
        .find(|o| o.result.as_ref().is_some_and(|r| r.columns == ["?column?"]))
        .expect("SELECT 1's outcome");
    assert_eq!(select_1.bytes, 60, "{select_1:?}");
    let results: Vec<_> = outcomes.iter().filter_map(|o| o.result.as_ref()).collect();
    let table = results
        .iter()
        .find(|r| r.columns == ["id", "note"])
        .expect("the bot's result is recorded");
    assert_eq!(table.rows.len(), 3, "{table:?}");
    assert_eq!(table.rows[2][0].as_deref(), Some("9"));
    assert!(
        table.rows[2][1].as_deref() != Some("canaryzq77"),
        "{table:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| r.columns == ["note"] && r.rows.len() == 1),
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .any(|r| r.columns == ["id"] && r.rows == [[Some("\\x00000001".to_owned())]]),
        "the ci's extended-protocol result: {results:?}"
    );

    // The trail verifies; listing and showing work from the CLI.
    let cfg = config.write();
    let out = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["audit", "verify", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let list = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["sessions", "list", "--refused", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains(" bot ") && !list.contains(" ci "), "{list}");
    // The ci session replayed: what it sent and what came of it.
    let ci_id = SqliteStore::open(&store)
        .unwrap()
        .sessions()
        .unwrap()
        .into_iter()
        .find(|s| s.user == "ci")
        .unwrap()
        .id;
    // The server connection it had (a real backend pid) and why it ended.
    let rows = sqlgate::store::events(&SqliteStore::open(&store).unwrap().rows(&ci_id).unwrap());
    let connected: sqlgate::store::Connected = rows
        .iter()
        .find(|r| r.kind == Kind::Connected)
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .expect("the server connection is recorded");
    assert!(connected.server_id > 0, "{connected:?}");
    let end: sqlgate::store::SessionEnd = rows
        .iter()
        .find(|r| r.kind == Kind::SessionEnd)
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .unwrap();
    assert_eq!(end.reason, "client left");
    assert!(end.bytes_in > 100 && end.bytes_out > 100, "{end:?}");
    let replay = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["sessions", "replay", &ci_id, "--no-wait", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let replay = String::from_utf8_lossy(&replay.stdout);
    for line in [
        "ci@app=> INSERT INTO rec_notes VALUES (1, 'simple')\nINSERT 0 1",
        "ci@app=> SELECT 1/0\nERROR:  division by zero (22012)",
        "-- session ended",
    ] {
        assert!(replay.contains(line), "{line:?} in\n{replay}");
    }

    // The bot's session replayed: its masked result as a table.
    let bot_id = SqliteStore::open(&store)
        .unwrap()
        .sessions()
        .unwrap()
        .into_iter()
        .find(|s| s.user == "bot")
        .unwrap()
        .id;
    let replay = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["sessions", "replay", &bot_id, "--no-wait", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let replay = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.contains("bot@app=> SELECT id, note FROM rec_notes ORDER BY id\n-- (results masked for this identity: note (")
            && replay.contains(" id | note\n----+------\n 1  | ***")
            && replay.contains("(3 rows)"),
        "{replay}"
    );

    // No secret in any byte of the store (WAL included) nor in any
    // record as read back; the search sees what the sessions ran.
    let bytes = crate::support::recording::everything_stored(config.path());
    assert!(crate::support::recording::holds(
        &bytes,
        "SELECT id, note FROM rec_notes ORDER BY id"
    ));
    // Nor a masked value: the store holds results as the client saw them.
    for secret in [
        pg::APP_OWNER_PW,
        "ci-pw",
        "bot-pw",
        "zqxsecret9",
        "canaryzq77",
    ] {
        assert!(
            !crate::support::recording::holds(&bytes, secret),
            "{secret} in the store"
        );
    }
    direct.batch_execute("DROP TABLE rec_notes").await.unwrap();
}

#[test]
fn every_write_the_server_ran_has_its_record_after_kill_9() {
    let server = pg::shared();
    server.psql(
        "app",
        "DROP TABLE IF EXISTS rec_killed; CREATE TABLE rec_killed (n int); \
         GRANT ALL ON rec_killed TO app_owner",
    );
    let mut config = TestConfig::new(server);
    let port = config.on_free_port();
    let path = config.write();
    let mut gw = GatewayProcess::start(&path, port, "info");
    let conn = format!(
        "host=127.0.0.1 port={port} user=agent password={} dbname=app",
        crate::support::gateway::AGENT_PW
    );
    // A client inserting one row a statement (psql sends each line of
    // its file as a query of its own), killed mid-stream.
    let script = config.path().join("inserts.sql");
    std::fs::write(
        &script,
        (0..5000)
            .map(|n| format!("INSERT INTO rec_killed VALUES ({n});\n"))
            .collect::<String>(),
    )
    .unwrap();
    let mut client = Command::new("psql")
        .arg(&conn)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&script)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let count = || {
        server
            .psql("app", "SELECT count(*) FROM rec_killed")
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    while count() < 200 {
        assert!(std::time::Instant::now() < deadline, "the writes never ran");
        std::thread::yield_now();
    }
    let _ = Command::new("kill")
        .args(["-9", &gw.pid().to_string()])
        .status();
    let _ = gw.wait_exit(Duration::from_secs(10));
    let _ = client.wait();
    let ran: Vec<String> = server
        .psql("app", "SELECT n FROM rec_killed ORDER BY n")
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(ran.len() >= 200, "{}", ran.len());
    let recorded: std::collections::HashSet<String> =
        statements(&config.path().join("sqlgate-recordings.db"))
            .into_iter()
            .map(|(_, e)| e.text)
            .collect();
    for n in &ran {
        assert!(
            recorded.contains(&format!("INSERT INTO rec_killed VALUES ({n})")),
            "row {n} was written but its statement has no record"
        );
    }
    server.psql("app", "DROP TABLE rec_killed");
}

#[tokio::test]
async fn a_full_disk_refuses_writes_clearly_and_recording_resumes_when_space_returns() {
    // The store on a small file system of its own, nearly filled.
    let disk = crate::support::recording::SmallDisk::mount();
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS rec_full; CREATE TABLE rec_full (n int, pad text); \
             GRANT ALL ON rec_full TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.toml.push_str(&format!(
        "\n[store]\npath = \"{}\"\n\n[admin]\nlisten = \"127.0.0.1:0\"\n",
        disk.path().join("rec.db").display()
    ));
    let gw = config.start().await;
    let admin = gw.running.admin_addr.expect("the admin listener");
    let healthy = scrape(admin).await;
    assert!(
        healthy.contains("sqlgate_recording_store_healthy 1")
            && healthy.contains("sqlgate_recording_store_failures_total 0"),
        "{healthy}"
    );
    // A write prepared while there is room, executed when there is not.
    let preparer = gw.agent().await;
    let prepared = preparer
        .prepare("INSERT INTO rec_full VALUES ($1, 'prepared')")
        .await
        .unwrap();
    let filler = disk.fill_leaving(400 << 10);
    let agent = gw.agent().await;
    let pad = "x".repeat(16 << 10);
    let mut refused_at = None;
    for n in 0..200 {
        let sql = format!("INSERT INTO rec_full VALUES ({n}, '{pad}')");
        match agent.simple_query(&sql).await {
            Ok(_) => {}
            Err(e) => {
                let db = e
                    .as_db_error()
                    .expect("a clear error, not a broken session");
                assert_eq!(db.code().code(), "42501");
                assert!(
                    db.message().contains("could not record"),
                    "{}",
                    db.message()
                );
                refused_at = Some(n);
                break;
            }
        }
    }
    let refused_at = refused_at.expect("the full disk refused a write");
    // The metric says so too.
    let failing = scrape(admin).await;
    assert!(
        failing.contains("sqlgate_recording_store_healthy 0")
            && !failing.contains("sqlgate_recording_store_failures_total 0"),
        "{failing}"
    );
    let rows: i64 = direct
        .query_one("SELECT count(*) FROM rec_full", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, refused_at as i64, "the refused write did not run");
    // An execution of a prepared write is refused too, in place (a
    // marker that fails as the Bind would), and never ran.
    let e = preparer.execute(&prepared, &[&-7i32]).await.unwrap_err();
    let db = e.as_db_error().expect("the refusal, not a bare disconnect");
    assert!(
        db.message().contains("could not record"),
        "{}",
        db.message()
    );
    let ran: i64 = direct
        .query_one("SELECT count(*) FROM rec_full WHERE n = -7", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ran, 0, "the refused execution did not run");
    // Reads still run; the session is alive.
    agent.simple_query("SELECT 1").await.unwrap();
    // Space returns: writes are recorded and run again.
    std::fs::remove_file(&filler).unwrap();
    agent
        .simple_query("INSERT INTO rec_full VALUES (-1, 'after')")
        .await
        .unwrap();
    assert!(statements(&disk.path().join("rec.db"))
        .iter()
        .any(|(_, e)| e.text == "INSERT INTO rec_full VALUES (-1, 'after')"));
    assert!(scrape(admin)
        .await
        .contains("sqlgate_recording_store_healthy 1"));
    // What was refused is in the trail as refused, never as run: its
    // record, kept while the store failed, went with the refusal.
    let refused_text = format!("INSERT INTO rec_full VALUES ({}, ", refused_at);
    let recorded = statements(&disk.path().join("rec.db"));
    let refused: Vec<_> = recorded
        .iter()
        .filter(|(_, e)| {
            e.text.starts_with(&refused_text)
                || (e.origin.starts_with("execute") && e.text.contains("'prepared'"))
        })
        .collect();
    let shown: Vec<_> = refused
        .iter()
        .map(|(_, e)| (&e.origin, &e.verdict, e.refusal.is_some()))
        .collect();
    assert!(refused.len() >= 2, "{shown:?}");
    assert!(
        refused.iter().all(|(_, e)| e.refusal.is_some()),
        "a refused statement recorded as run: {shown:?}"
    );
    drop(agent);
    direct.batch_execute("DROP TABLE rec_full").await.unwrap();
}

/// Two gateway instances recording into one PostgreSQL store: their
/// sessions' links form one chain, signed by both, that verifies; an edit
/// made in the database is found.
#[tokio::test]
async fn two_gateways_write_one_postgres_trail_that_verifies() {
    let server = pg::shared();
    let db = format!("rec_shared_{}", std::process::id());
    server.psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    server.psql("postgres", &format!("CREATE DATABASE {db}"));
    let key = sqlgate::store::checkpoint::Key::generate();
    let configs: Vec<TestConfig> = (0..2)
        .map(|_| {
            let mut c = TestConfig::new(server);
            c.secret("store.pw", pg::SUPERUSER_PW);
            std::fs::write(c.path().join("audit.key"), key.to_file_text()).unwrap();
            std::fs::write(c.path().join("audit.pub"), key.public_text()).unwrap();
            c.toml.push_str(&format!(
                "\n[store]\nurl = \"postgres://postgres@127.0.0.1:{}/{db}\"\npassword_file = \"store.pw\"\n\
                 \n[recording]\nsigning_key_file = \"audit.key\"\ncheckpoint_secs = 1\n",
                server.port
            ));
            c
        })
        .collect();
    let mut gateways = Vec::new();
    for c in &configs {
        gateways.push(c.start().await);
    }
    // Sessions on both, ending interleaved: A, B, A, B.
    for round in 0..2 {
        for (i, gw) in gateways.iter().enumerate() {
            let client =
                connect(&gw.conn_str("agent", crate::support::gateway::AGENT_PW, "app")).await;
            client
                .simple_query(&format!("SELECT {round} AS round, {i} AS gateway"))
                .await
                .unwrap();
            drop(client);
            // Its end reaches the store before the next session starts.
            let rec = gw.running.recorder.clone().unwrap();
            let want = round * 2 + i + 1;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                rec.flush();
                let ended = server.psql(
                    &db,
                    "SELECT count(*) FROM sqlgate_audit.sessions WHERE ended_us IS NOT NULL",
                );
                if ended.parse::<usize>().unwrap() >= want {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "session never ended");
                tokio::task::yield_now().await;
            }
        }
    }
    assert_eq!(
        server.psql(&db, "SELECT count(*) FROM sqlgate_audit.links"),
        "4"
    );
    // `verify` reads one snapshot: what another gateway appends meanwhile
    // is not half seen.
    {
        let url = format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname={db}",
            server.port,
            pg::SUPERUSER_PW
        );
        let port = server.port;
        let db2 = db.clone();
        // The store's client blocks: off the test's runtime.
        let seen = std::thread::spawn(move || {
            let mut reader =
                sqlgate::store::postgres::PostgresStore::connect(&url.parse().unwrap(), None)
                    .unwrap();
            reader.begin_snapshot().unwrap();
            let before = reader.links().unwrap().len();
            let out = Command::new("psql")
                .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-p"])
                .arg(port.to_string())
                .args(["-d", &db2, "-c"])
                .arg(
                    "INSERT INTO sqlgate_audit.links \
                     SELECT n + 100, session, records, head, prev, hash \
                     FROM sqlgate_audit.links WHERE n = 0",
                )
                .env("PGPASSWORD", pg::SUPERUSER_PW)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let inside = reader.links().unwrap().len();
            reader.end_snapshot().unwrap();
            (before, inside, reader.links().unwrap().len())
        })
        .join()
        .unwrap();
        assert_eq!(seen, (4, 4, 5));
        server.psql(&db, "DELETE FROM sqlgate_audit.links WHERE n >= 100");
    }
    let verify = |cfg: &TestConfig| {
        Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .args(["audit", "verify", "--public-key"])
            .arg(cfg.path().join("audit.pub"))
            .arg("--config")
            .arg(cfg.write())
            .output()
            .unwrap()
    };
    let out = verify(&configs[1]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("4 links verified"), "{text}");
    // Both instances' sessions are listed from either configuration.
    let list = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["sessions", "list", "--config"])
        .arg(configs[0].write())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&list.stdout)
            .matches(" agent ")
            .count(),
        4,
        "{}",
        String::from_utf8_lossy(&list.stdout)
    );
    drop(gateways);
    // An edit in the database is found.
    server.psql(
        &db,
        "UPDATE sqlgate_audit.records SET body = replace(body, '1 AS round', '7 AS round') \
         WHERE body LIKE '%1 AS round%' AND kind = 'events'",
    );
    let out = verify(&configs[0]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("edited"), "{text}");
    server.psql("postgres", &format!("DROP DATABASE {db} WITH (FORCE)"));
}

/// psql through the gateway: a multi-statement text, COPY in and out,
/// an error; the replay shows each statement and what came of it.
#[tokio::test]
async fn psql_sessions_replay_with_multi_statement_texts_and_copy() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS rec_copy; CREATE TABLE rec_copy (id int, word text); \
             GRANT ALL ON rec_copy TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let port = gw.addr().port();
    let script = config.path().join("script.sql");
    std::fs::write(
        &script,
        "COPY rec_copy FROM STDIN;\n1\tone\n2\ttwo\n\\.\n\
         COPY rec_copy TO STDOUT;\n\
         SELECT 1/0;\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        // One Query message with two statements, then the script.
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} dbname=app user=ci sslmode=disable"
            ))
            .args([
                "-X",
                "-c",
                "SELECT count(*) AS n FROM rec_copy; SELECT 'two' AS w",
            ])
            .arg("-f")
            .arg(&script)
            .env("PGPASSWORD", "ci-pw")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1\tone"), "{stdout}");
    let rec = gw.running.recorder.clone().unwrap();
    let store = config.path().join("sqlgate-recordings.db");
    let id = crate::support::recording::ended_session(&rec, &store, "ci").await;
    let replay = crate::support::recording::replay(&config.write(), &id);
    for want in [
        "ci@app=> SELECT count(*) AS n FROM rec_copy",
        "-- startup: SELECT pg_catalog.set_config('application_name', 'psql', false)",
        "ci@app=> SELECT 'two' AS w",
        " n\n---\n 0\n(1 row)",
        "  w\n-----\n two\n(1 row)",
        "ci@app=> COPY rec_copy FROM STDIN\nCOPY 2",
        "ci@app=> COPY rec_copy TO STDOUT\nCOPY 2",
        "ci@app=> SELECT 1/0\nERROR:  division by zero (22012)",
    ] {
        assert!(replay.contains(want), "{want:?} in\n{replay}");
    }
    direct.batch_execute("DROP TABLE rec_copy").await.unwrap();
}
