//! The policy through the binary: `sqlgate check` reports policy problems
//! by file and line, `sqlgate explain` shows a judgement without a
//! database, and SIGHUP reloads the policy (a bad file keeps the old one).

use std::process::Command;
use std::time::Duration;

use crate::pg::policy::VIEWERS;
use crate::support::binary::{GatewayProcess, BIN};
use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

fn sqlgate(args: &[&str], config: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_validates_every_policy_file() {
    let mut cfg = TestConfig::new(pg::shared());
    cfg.with_example_policy(&["app"], VIEWERS);
    let path = cfg.write();
    let (ok, out, err) = sqlgate(&["check"], &path);
    assert!(ok, "{err}");
    assert!(out.contains("3 rules in 2 policy files"), "{out}");

    std::fs::write(
        cfg.path().join("policies/extra.toml"),
        "[[rule]]\nname = \"viewers\"\ngroups = [\"viewers\"]\ntargets = [\"*\"]\n\
         allow = [\"read\", \"write.everything\"]\ndeny = [\"admin\"]\nreview = [\"admin\"]\n",
    )
    .unwrap();
    let (ok, _, err) = sqlgate(&["check"], &path);
    assert!(!ok);
    assert!(
        err.contains("extra.toml:5: rule \"viewers\".allow: unknown tag \"write.everything\""),
        "{err}"
    );
    assert!(err.contains("\"admin\" is also in review"), "{err}");
}

/// A reader that stops early (`sqlgate explain ... | head -1`): the
/// command ends quietly, never with a panic on the closed pipe.
#[test]
fn output_to_a_reader_that_left_ends_quietly() {
    let mut cfg = TestConfig::new(pg::shared());
    cfg.with_example_policy(&["app"], "");
    let path = cfg.write();
    let (reader, writer) = std::io::pipe().unwrap();
    // Nobody reads: the first write meets a closed pipe.
    drop(reader);
    let sql = "SELECT * FROM orders; DROP TABLE orders";
    let out = Command::new(BIN)
        .args([
            "explain", "--user", "bot", "--target", "app", sql, "--config",
        ])
        .arg(&path)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?} {err}", out.status);
}

#[test]
fn explain_shows_tags_rules_and_verdict_without_a_database() {
    let mut cfg = TestConfig::new(pg::shared());
    cfg.with_example_policy(&["app"], "");
    // Nothing listens there: explain must not connect, nor need the
    // target's password.
    cfg.toml = cfg
        .toml
        .replace(&format!("port = {}", pg::shared().port), "port = 1")
        .replace(
            "password_file = \"app.pw\"",
            "password_env = \"SQLGATE_TEST_SURELY_UNSET\"",
        );
    let path = cfg.write();
    let sql = "SELECT * FROM orders; DROP TABLE orders";
    let (ok, out, err) = sqlgate(&["explain", "--user", "bot", "--target", "app", sql], &path);
    assert!(ok, "{err}");
    for expected in [
        "matching rules: agents-read-only",
        "tags: read",
        "tags: ddl.drop",
        "rule \"agents-read-only\" (ddl)",
        "verdict: deny",
    ] {
        assert!(out.contains(expected), "{expected} in\n{out}");
    }
    let (ok, out, err) = sqlgate(
        &[
            "explain",
            "--user",
            "ci",
            "--target",
            "app",
            "--format",
            "json",
            "DELETE FROM orders",
        ],
        &path,
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "review");
    assert_eq!(
        v["statements"][0]["tags"],
        serde_json::json!(["write.delete", "write.unbounded"])
    );
    assert_eq!(v["statements"][0]["by_tag"][1]["entry"], "write.unbounded");
    assert_eq!(v["read_only_session"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_and_a_bad_file_keeps_the_old_one() {
    let mut cfg = TestConfig::new(pg::shared());
    let port = cfg.on_free_port();
    cfg.with_example_policy(&["app"], VIEWERS);
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info");
    let viewer = connect(&format!(
        "host=127.0.0.1 port={port} user=viewer password=viewer-pw dbname=app"
    ))
    .await;
    viewer.simple_query("SELECT 1").await.unwrap();

    let hup = |pid: u32| {
        let st = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    // Viewers lose `read`: the running session is judged by the new policy.
    std::fs::write(
        cfg.path().join("policies/extra.toml"),
        VIEWERS.replace("allow = [\"read\", ", "deny = [\"read\"]\nallow = ["),
    )
    .unwrap();
    hup(gw.pid());
    assert!(gw
        .wait_for_line(|l| l.contains("policy reloaded"), Duration::from_secs(10))
        .is_some());
    let e = viewer.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42501");

    // A broken file: the log says why, the policy in force stays.
    std::fs::write(cfg.path().join("policies/extra.toml"), "[[rule]\nname = ").unwrap();
    hup(gw.pid());
    let line = gw
        .wait_for_line(
            |l| l.contains("policy reload failed"),
            Duration::from_secs(10),
        )
        .expect("the failure is logged");
    assert!(line.contains("extra.toml:1"), "{line}");
    let e = viewer.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42501");
    viewer.simple_query("BEGIN").await.unwrap();
}

/// psql's catalog queries (its backslash commands) are reads: an agent
/// under the example policy can look around with a stock client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands_work_for_an_agent() {
    let mut cfg = TestConfig::new(pg::shared());
    // With the example masking rules too: metadata stays readable.
    let masks = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/masking.toml"),
    )
    .unwrap();
    cfg.with_example_policy(&["app"], &masks);
    let gw = cfg.start().await;
    gw.catalog_read().await;
    let port = gw.port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .arg(format!("host=127.0.0.1 port={port} dbname=app user=bot"))
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-c", "\\dt", "-c", "\\dn", "-c", "\\df", "-c", "\\du", "-c", "\\l",
            ])
            .args([
                "-c",
                "\\d+ pg_catalog.pg_class",
                "-c",
                "\\conninfo",
                "-c",
                "\\d+",
            ])
            .env("PGPASSWORD", "bot-pw")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a write from psql is refused with the policy's message.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .arg(format!("host=127.0.0.1 port={port} dbname=app user=bot"))
            .args(["-X", "-c", "DROP TABLE IF EXISTS nothing_here"])
            .env("PGPASSWORD", "bot-pw")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("permission denied by sqlgate policy: ddl.drop"),
        "{err}"
    );
}

/// A reload that makes masking rules apply to an identity: its sessions
/// opened before cannot mask their results, so they are refused until
/// they reconnect; new sessions are masked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_masks_refuses_sessions_opened_before_it() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS reload_people; \
             CREATE TABLE reload_people (id int, ssn text); \
             INSERT INTO reload_people VALUES (1, '123-45-6789'); \
             GRANT ALL ON reload_people TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    let port = cfg.on_free_port();
    cfg.with_example_policy(&["app"], "");
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info");
    let conn_str = format!("host=127.0.0.1 port={port} user=bot password=bot-pw dbname=app");
    let before = connect(&conn_str).await;
    let row = before
        .query_one("SELECT ssn FROM reload_people", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "123-45-6789");
    let prepared = before
        .prepare("SELECT ssn FROM reload_people")
        .await
        .unwrap();

    std::fs::write(
        cfg.path().join("policies/extra.toml"),
        "[[mask]]\ncolumns = [\"*.reload_people.ssn\"]\nfunction = { keep_last = 4 }\n",
    )
    .unwrap();
    let st = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(gw
        .wait_for_line(|l| l.contains("policy reloaded"), Duration::from_secs(10))
        .is_some());
    assert!(gw
        .wait_for_line(
            |l| l.contains("catalog read for masking"),
            Duration::from_secs(10)
        )
        .is_some());
    let e = before
        .simple_query("SELECT ssn FROM reload_people")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42501");
    assert_eq!(db.hint(), Some("reconnect"), "{db:?}");
    // A statement parsed before the reload is never judged again: its
    // Bind ends the session rather than run it unmasked.
    let e = before.query(&prepared, &[]).await.unwrap_err();
    assert!(
        format!("{e:?}").contains("masking rules apply to this session"),
        "{e:?}; the gateway said: {:#?}",
        gw.drain_lines()
    );
    let after = connect(&conn_str).await;
    let row = after
        .query_one("SELECT ssn FROM reload_people", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "***-**-6789");
    direct
        .batch_execute("DROP TABLE reload_people")
        .await
        .unwrap();
}

#[tokio::test]
async fn pg_dump_schema_only_runs_for_a_masked_agent() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS dump_people; \
             CREATE TABLE dump_people (id int PRIMARY KEY, email text); \
             GRANT ALL ON dump_people TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    cfg.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.dump_people.email\"]\nfunction = \"redact\"\n",
    );
    let gw = cfg.start().await;
    gw.catalog_has("dump_people").await;
    let port = gw.port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("pg_dump")
            .arg(format!("host=127.0.0.1 port={port} dbname=app user=bot"))
            .args(["--schema-only", "-t", "dump_people"])
            .env("PGPASSWORD", "bot-pw")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(dump.contains("CREATE TABLE public.dump_people"), "{dump}");
}

#[tokio::test]
async fn functions_a_dba_declares_reads_run_for_a_read_only_agent_and_stay_code_to_masking() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS fn_people; \
             CREATE TABLE fn_people (id int, name text, email text); \
             INSERT INTO fn_people VALUES (1, 'Ann Lee', 'zqxfn7@leak.test'); \
             CREATE OR REPLACE FUNCTION slug(text) RETURNS text IMMUTABLE LANGUAGE sql \
                AS $$ SELECT replace(lower($1), ' ', '-') $$; \
             CREATE OR REPLACE FUNCTION undeclared(text) RETURNS text IMMUTABLE LANGUAGE sql \
                AS $$ SELECT $1 $$; \
             GRANT ALL ON fn_people TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    cfg.with_example_policy(&["app"], "[functions]\nread = [\"public.slug\"]\n");
    let gw = cfg.start().await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    let row = bot
        .query_one("SELECT slug(name) FROM fn_people", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ann-lee");
    // Not declared: code, which the agents' rule denies.
    let e = bot
        .query_one("SELECT undeclared(name) FROM fn_people", &[])
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "42501");
    drop(gw);

    // Declared a read, but its reads are unknown to masking: where masks
    // apply, refused rather than run unmasked.
    let mut cfg = TestConfig::new(server);
    cfg.with_example_policy(
        &["app"],
        "[functions]\nread = [\"public.slug\"]\n\n\
         [[mask]]\ncolumns = [\"public.fn_people.email\"]\nfunction = \"redact\"\n",
    );
    let gw = cfg.start().await;
    gw.catalog_has("fn_people").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    for sql in [
        "SELECT slug(email) FROM fn_people",
        "SELECT slug(name) FROM fn_people",
    ] {
        let e = bot.query_one(sql, &[]).await.unwrap_err();
        assert_eq!(e.as_db_error().unwrap().code().code(), "42501", "{sql}");
    }
    direct
        .batch_execute("DROP TABLE fn_people; DROP FUNCTION slug(text), undeclared(text)")
        .await
        .unwrap();
}
