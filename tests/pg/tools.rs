//! The binary with stock tools: psql over TLS, pgbench, the statement log,
//! and memory under a slow client.

use std::process::Command;
use std::time::Duration;

use crate::support::binary::{GatewayProcess, BIN};
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::pg;
use crate::support::raw::RawClient;

/// A config for the binary on a fixed free port, optionally with TLS from
/// `sqlgate cert`.
fn binary_config(tls: bool) -> (TestConfig, u16) {
    let mut cfg = TestConfig::new(pg::shared());
    let port = cfg.on_free_port();
    if tls {
        let out = Command::new(BIN)
            .args(["cert", "--out"])
            .arg(cfg.path().join("certs"))
            .args(["--name", "localhost"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cfg.listener("tls_cert = \"certs/server.crt\"\ntls_key = \"certs/server.key\"");
    }
    (cfg, port)
}

fn psql(port: u16, conn: &str, args: &[&str], password: &str) -> std::process::Output {
    Command::new("psql")
        .arg(format!("host=localhost port={port} dbname=app {conn}"))
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .env("PGPASSWORD", password)
        .env_remove("PGSSLMODE")
        .output()
        .unwrap()
}

#[test]
fn psql_over_tls_runs_a_script_with_meta_commands() {
    let (mut cfg, port) = binary_config(true);
    cfg.user("tokenish", "agent.pw", &["app"], "auth = \"password\"");
    let path = cfg.write();
    let _gw = GatewayProcess::start(&path, port, "info");
    let script = cfg.path().join("script.sql");
    std::fs::write(
        &script,
        "\\conninfo\n\
         CREATE TEMP TABLE psql_t (id serial PRIMARY KEY, name text NOT NULL);\n\
         INSERT INTO psql_t (name) VALUES ('a'), ('b');\n\
         \\d psql_t\n\
         \\dt pg_temp*.*\n\
         \\dn\n\
         \\df pg_catalog.pg_sleep\n\
         SELECT count(*) AS n FROM psql_t \\gset\n\
         \\echo rows: :n\n",
    )
    .unwrap();
    let root = cfg.path().join("certs/server.crt");
    let conn = format!(
        "user=agent sslmode=verify-full sslrootcert={}",
        root.display()
    );
    let out = psql(port, &conn, &["-f", script.to_str().unwrap()], AGENT_PW);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SSL connection"), "{stdout}");
    assert!(
        stdout.contains("psql_t_pkey"),
        "\\d shows the index: {stdout}"
    );
    assert!(
        stdout.contains("name   | text    |           | not null"),
        "{stdout}"
    );
    assert!(stdout.contains("pg_sleep"), "{stdout}");
    assert!(stdout.contains("rows: 2"), "{stdout}");
    // A cleartext-password user works over TLS...
    let out = psql(
        port,
        "user=tokenish sslmode=require",
        &["-c", "SELECT 1"],
        AGENT_PW,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ...and is refused without it.
    let out = psql(
        port,
        "user=tokenish sslmode=disable",
        &["-c", "SELECT 1"],
        AGENT_PW,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only over TLS"));
}

#[test]
fn every_statement_is_parsed_and_logged_with_its_session() {
    let (cfg, port) = binary_config(false);
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info,sqlgate::statement=debug");
    let out = psql(
        port,
        "user=agent",
        &["-c", "SELECT 42 AS answer; SELECT 'second'"],
        AGENT_PW,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = gw
        .wait_for_line(
            |l| l.contains("SELECT 42 AS answer"),
            Duration::from_secs(10),
        )
        .expect("the first statement is logged");
    for field in ["user=agent", "target_name=app", "session=", "origin=Query"] {
        assert!(first.contains(field), "{field} in {first}");
    }
    assert!(gw
        .wait_for_line(|l| l.contains("SELECT 'second'"), Duration::from_secs(10))
        .is_some());
    let out = psql(
        port,
        "user=agent",
        &["-c", "SELEC 42 FROM nowhere"],
        AGENT_PW,
    );
    assert!(!out.status.success());
    assert!(gw
        .wait_for_line(
            |l| l.contains("tags=unknown") && l.contains("SELEC 42 FROM nowhere"),
            Duration::from_secs(10)
        )
        .is_some());
}

fn pgbench(port: u16, args: &[&str]) -> String {
    let out = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "agent"])
        .args(args)
        .arg("app")
        .env("PGPASSWORD", AGENT_PW)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pgbench {args:?}: {text}");
    text
}

#[test]
fn pgbench_runs_with_every_protocol_without_failures() {
    let (cfg, port) = binary_config(false);
    let path = cfg.write();
    let _gw = GatewayProcess::start(&path, port, "warn,sqlgate=info");
    pgbench(port, &["-i", "-s", "1", "-q"]);
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(port, &["-T", "10", "-c", "4", "-j", "2", "-M", mode]);
        assert!(
            out.contains("number of failed transactions: 0 (0.000%)"),
            "{mode}: {out}"
        );
        let done = out
            .lines()
            .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        assert!(done > 100, "{mode}: {out}");
    }
}

#[tokio::test]
async fn a_slow_client_slows_the_server_not_the_gateways_memory() {
    let pg = pg::shared();
    let (cfg, port) = binary_config(false);
    let path = cfg.write();
    let gw = GatewayProcess::start(&path, port, "warn,sqlgate=info");
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut slow, _) =
        RawClient::connect(addr, &[("user", "agent"), ("database", "app")], AGENT_PW)
            .await
            .unwrap();
    let before = gw.rss_kib();
    // About 160 MB of rows that the client does not read for now.
    let marker = format!("slow-{}", std::process::id());
    let sql =
        format!("SELECT g, repeat('x', 8000) /* {marker} */ FROM generate_series(1, 20000) g");
    let mut msg = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query(&sql, &mut msg).unwrap();
    slow.send(&msg).await;
    // The server must end up blocked writing to its client (the gateway).
    pg.wait_for_backend("wait_event = 'ClientWrite'", &marker)
        .await;
    let during = gw.rss_kib();
    assert!(
        during < before + 32 * 1024,
        "gateway memory grew from {before} KiB to {during} KiB while holding back a 160 MB result"
    );
    // And nothing is lost once the client reads.
    let msgs = slow.until_ready().await;
    let rows = msgs.iter().filter(|(t, _)| *t == b'D').count();
    assert_eq!(rows, 20000);
}

#[test]
fn a_wrong_config_fails_at_start_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[postgres]\nlisten = \"127.0.0.1:0\"\n\n[[target]]\nname = \"app\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\n\
         database = \"app\"\nuser = \"app_owner\"\npassword_env = \"SQLGATE_TEST_SURELY_UNSET\"\npool_size = 0\n",
    )
    .unwrap();
    for command in ["check", "serve"] {
        let out = Command::new(BIN)
            .args([command, "--config"])
            .arg(&path)
            .env_remove("SQLGATE_TEST_SURELY_UNSET")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("bad.toml:10: target \"app\" password_env: environment variable SQLGATE_TEST_SURELY_UNSET is not set"),
            "{command}: {stderr}"
        );
        assert!(
            stderr.contains("bad.toml:11: target \"app\" pool_size: must be at least 1"),
            "{command}: {stderr}"
        );
    }
    // The recording store's and the admin plane's keys too: a password in
    // the store's URL is refused, never used.
    std::fs::write(
        &path,
        "[postgres]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"postgres://u:hunter2@db/audit\"\n\
         tls = \"verify-full\"\n\n[recording]\nresult_rows = 1000000\nparameters = \"some\"\n\n\
         [admin]\nlisten = \"nowhere\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for want in [
        "bad.toml:5: store.url: must not hold a password",
        "bad.toml:6: store.tls: verify-full needs tls_ca_file",
        "bad.toml:9: recording.result_rows: must be at most 100000",
        "bad.toml:10: recording.parameters: must be \"all\" or \"omit\"",
        "bad.toml:13: admin.listen: is not an address",
    ] {
        assert!(stderr.contains(want), "{want} in {stderr}");
    }
    assert!(!stderr.contains("hunter2"), "{stderr}");
    std::fs::write(&path, "[postgres]\nlisten = \"127.0.0.1:0\"\npool = 3\n").unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.toml:3: unknown field `pool`"),
        "{stderr}"
    );
}

/// `[log] format = "json"`: every line the gateway writes is one JSON
/// object (level, target, fields), for a log pipeline.
#[test]
fn log_lines_are_json_when_asked() {
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    let port = cfg.on_free_port();
    cfg.toml.push_str("\n[log]\nformat = \"json\"\n");
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info");
    let out = psql(port, "user=agent", &["-c", "SELECT 1"], AGENT_PW);
    assert!(out.status.success());
    let line = gw
        .wait_for_line(|l| l.contains("session started"), Duration::from_secs(30))
        .expect("the session's line");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["fields"]["message"], "session started", "{line}");
    assert_eq!(v["fields"]["user"], "agent", "{line}");
}
