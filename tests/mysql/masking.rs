//! Masking, fail-closed, on the MySQL path.

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::gateway::{Gateway, TestConfig};
use crate::support::mariadb;

const MASKS: &str = r#"
[[mask]]
name = "customer-pii"
columns = ["app.mask_customers.ssn", "*.mask_customers.email"]
function = { keep_last = 4 }
except_users = ["ci"]
"#;

async fn conn(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap()).await.unwrap()
}

async fn catalog_has(gw: &Gateway, relation: &str) {
    use sqlgate::policy::mask::lineage::Catalog;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw
        .running
        .engine
        .catalog("app")
        .is_none_or(|c| c.relation(None, relation).is_none())
    {
        assert!(Instant::now() < deadline, "catalog never held {relation}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn masked_values_never_reach_a_masked_identity() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS mask_customers; \
             CREATE TABLE mask_customers (id INT, name TEXT, email TEXT, ssn TEXT); \
             INSERT INTO mask_customers VALUES (1, 'Ann', 'ann@example.com', '900-11-2222')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], MASKS);
    let gw = config.start().await;
    catalog_has(&gw, "mask_customers").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    let name: String = bot
        .query_first("SELECT name FROM mask_customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, "Ann");
    for sql in [
        "SELECT ssn FROM mask_customers",
        "SELECT * FROM mask_customers",
        "SELECT CONCAT(email, '') FROM mask_customers",
        "SELECT name FROM mask_customers WHERE ssn LIKE '900%'",
        "SELECT (SELECT MAX(ssn) FROM mask_customers)",
        "SELECT name FROM mask_customers UNION SELECT email FROM mask_customers",
    ] {
        match bot.query_drop(sql).await.unwrap_err() {
            mysql_async::Error::Server(s) => {
                assert_eq!(
                    (s.code, s.state.as_str()),
                    (1142, "42000"),
                    "{sql}: {}",
                    s.message
                );
                assert!(s.message.contains("customer-pii"), "{sql}: {}", s.message);
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    // Prepared statements too.
    assert!(bot
        .exec_drop("SELECT ssn FROM mask_customers WHERE id = ?", (1,))
        .await
        .is_err());
    let mut ci = conn(&gw.mysql_url("ci", "ci-pw", "app")).await;
    let ssn: String = ci
        .query_first("SELECT ssn FROM mask_customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ssn, "900-11-2222");
    direct
        .query_drop("DROP TABLE mask_customers")
        .await
        .unwrap();
}
