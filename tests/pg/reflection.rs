//! The tools agents and pipelines point at a database, through the
//! gateway as a masked, read-only identity (the example policy's `bot`):
//! SQLAlchemy's reflection and `alembic check` on PostgreSQL (issue 12).
//! The pipeline's migrations ran before (`alembic_version` exists): the
//! agent only checks.

use crate::support::gateway::{connect, TestConfig};
use crate::support::{pg, python};

#[tokio::test]
async fn sqlalchemy_reflection_and_alembic_check_run_for_a_masked_agent() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP VIEW IF EXISTS tool_vip; DROP TABLE IF EXISTS tool_people, alembic_version; \
             CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); \
             CREATE TABLE tool_people (id int PRIMARY KEY, email varchar(80), \
                status varchar(20) DEFAULT 'active'); \
             CREATE INDEX tool_people_status ON tool_people (status); \
             CREATE VIEW tool_vip AS SELECT id FROM tool_people WHERE email = 'zqxtool7@leak.test'; \
             GRANT ALL ON tool_people, tool_vip, alembic_version TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.tool_people.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("tool_vip").await;
    let url = format!(
        "postgresql+psycopg2://bot:bot-pw@127.0.0.1:{}/app",
        gw.port()
    );
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
    assert!(
        seen["tables"]
            .as_array()
            .unwrap()
            .contains(&"tool_people".into()),
        "{seen}"
    );
    assert_eq!(
        seen["columns"]["tool_people"],
        serde_json::json!(["id", "email", "status"])
    );
    assert_eq!(
        seen["indexes"]["tool_people"],
        serde_json::json!(["tool_people_status"])
    );
    let def = seen["view_definitions"]["tool_vip"].as_str().unwrap();
    assert!(def.contains("'?'") && !def.contains("zqxtool7"), "{def}");
    direct
        .batch_execute("DROP VIEW tool_vip; DROP TABLE tool_people, alembic_version")
        .await
        .unwrap();
}
