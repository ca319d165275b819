//! The catalog masking needs is read again after a failed read: a server
//! that refuses the gateway's login at start (or DDL that drops a view
//! while the catalog query reads it) must not leave masked tables refused
//! until the next policy reload.

use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

#[tokio::test]
async fn a_failed_catalog_read_is_retried_until_it_succeeds() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP ROLE IF EXISTS catalog_late; \
             CREATE ROLE catalog_late NOLOGIN PASSWORD 'catalog-late-pw'; \
             DROP TABLE IF EXISTS catalog_late_people; \
             CREATE TABLE catalog_late_people (email text); \
             INSERT INTO catalog_late_people VALUES ('late@example.com'); \
             GRANT SELECT ON catalog_late_people TO catalog_late",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.secret("late.pw", "catalog-late-pw");
    config.retarget(server.port, server.port, "catalog_late", "late.pw", "");
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.catalog_late_people.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    // The first read fails: the role may not log in yet. Letting it in
    // is all that changes; the gateway must come back on its own.
    server
        .wait_for_log("role \"catalog_late\" is not permitted to log in")
        .await;
    direct
        .batch_execute("ALTER ROLE catalog_late LOGIN")
        .await
        .unwrap();
    gw.catalog_has("catalog_late_people").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    let rows = bot
        .simple_query("SELECT email FROM catalog_late_people")
        .await
        .unwrap();
    let text = format!("{rows:?}");
    assert!(!text.contains("late@example.com"), "{text}");
    direct
        .batch_execute("DROP TABLE catalog_late_people; DROP ROLE catalog_late")
        .await
        .unwrap();
}
