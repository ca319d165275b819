//! The tools agents and pipelines point at a database, through the
//! gateway as a masked, read-only identity (the example policy's `bot`):
//! SQLAlchemy's reflection, `alembic check` and `mysqldump --no-data
//! --single-transaction` on MariaDB (issue 12).

use std::process::Command;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::gateway::TestConfig;
use crate::support::{mariadb, python};

#[tokio::test]
async fn sqlalchemy_alembic_and_mysqldump_run_for_a_masked_agent() {
    let my = mariadb::shared();
    let mut direct = Conn::new(Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    direct
        .query_drop(
            "DROP VIEW IF EXISTS tool_vip; \
             CREATE OR REPLACE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY); \
             CREATE OR REPLACE TABLE tool_people (id INT PRIMARY KEY, email VARCHAR(80), \
                status VARCHAR(20) DEFAULT 'active', INDEX tool_people_status (status)); \
             CREATE VIEW tool_vip AS SELECT id FROM tool_people WHERE email = 'zqxtool7@leak.test'",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.tool_people.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("tool_vip").await;
    let port = gw.mysql_port();
    let url = format!("mysql+pymysql://bot:bot-pw@127.0.0.1:{port}/app");
    let out = tokio::task::spawn_blocking(move || python::run("alembic_check.py", &[&url]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // alembic says what it checked first; the script's JSON comes last.
    let last = stdout.trim().lines().last().unwrap_or_default();
    let seen: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(
        seen["columns"]["tool_people"],
        serde_json::json!(["id", "email", "status"])
    );
    assert_eq!(
        seen["indexes"]["tool_people"],
        serde_json::json!(["tool_people_status"])
    );
    assert!(
        seen["views"]
            .as_array()
            .unwrap()
            .contains(&"tool_vip".into()),
        "{seen}"
    );

    let direct_port = my.port;
    let dump = |port: u16, user: &'static str, password: &'static str| {
        tokio::task::spawn_blocking(move || {
            let out = Command::new("mysqldump")
                .arg("--no-defaults")
                .args(["--host=127.0.0.1", &format!("--port={port}")])
                .args([format!("--user={user}"), format!("--password={password}")])
                .args([
                    "--no-data",
                    "--single-transaction",
                    "--skip-triggers",
                    "app",
                ])
                .args(["tool_people", "tool_vip"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with("-- Dump completed"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    let through = dump(port, "bot", "bot-pw").await.unwrap();
    let direct_dump = dump(direct_port, "root", mariadb::ROOT_PW).await.unwrap();
    // The same dump, but for the literals of definitions (the view's
    // filter, the column's default).
    assert_eq!(
        through,
        direct_dump
            .replace("'zqxtool7@leak.test'", "'?'")
            .replace("DEFAULT 'active'", "DEFAULT '?'")
    );
    direct
        .query_drop("DROP VIEW tool_vip; DROP TABLE tool_people, alembic_version")
        .await
        .unwrap();
}
