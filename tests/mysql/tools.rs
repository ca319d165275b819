//! The binary with the MySQL listener: every statement parsed and logged.

use std::process::Command;
use std::time::Duration;

use crate::support::binary::GatewayProcess;
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::mariadb;
use crate::support::pg::free_port;

#[test]
fn every_mysql_statement_is_parsed_and_logged_with_its_session() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    let port = free_port();
    cfg.toml = cfg
        .toml
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info,sqlgate::statement=debug");
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--host=127.0.0.1", "--user=agent"])
        .arg(format!("--port={port}"))
        .arg(format!("--password={AGENT_PW}"))
        .args([
            "app",
            "-e",
            "SELECT 42 AS answer; SELECT 1 /*!50000 + 1 */ AS two",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = gw
        .wait_for_line(
            |l| l.contains("SELECT 42 AS answer"),
            Duration::from_secs(10),
        )
        .expect("the statement is logged");
    for field in ["user=agent", "target_name=app", "session=", "origin=Query"] {
        assert!(line.contains(field), "{field} in {line}");
    }
}
