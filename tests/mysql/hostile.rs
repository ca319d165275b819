//! Hostile client byte streams through the real gateway: a logged-in
//! masked identity sends a mutated or cut-off session (text and binary
//! protocol over masked columns, statement reset and close, ping, init db,
//! field list, a transaction), then closes its side. Each such connection
//! must end promptly, the gateway must raise no panic, and a session
//! opened before the barrage keeps working, still masked.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};
use tokio::io::AsyncWriteExt;

use super::relay::{raw_login, until};
use crate::support::gateway::TestConfig;
use crate::support::{barrage, mariadb, panics};

const MASKS: &str = r#"
[[mask]]
name = "hostile-pii"
columns = ["app.hostile_customers.email"]
function = "redact"
except_users = ["ci"]
"#;

/// How many hostile sessions, and how many at once.
const STREAMS: usize = 200;
const AT_ONCE: usize = 8;

/// Commands as a client sends them (each its own sequence 0).
fn script() -> Vec<u8> {
    const LAST: u32 = u32::MAX;
    let mut commands: Vec<Vec<u8>> = Vec::new();
    let query = |sql: &str| [&[0x03][..], sql.as_bytes()].concat();
    commands.push(query("SELECT id, email FROM hostile_customers"));
    commands.push(
        [
            &[0x16][..],
            b"SELECT email, ssn FROM hostile_customers WHERE id = ?",
        ]
        .concat(),
    );
    // COM_STMT_EXECUTE of the statement prepared last (MariaDB's id
    // 0xFFFFFFFF: ids count on per server connection, which the pool
    // reuses): no cursor, one iteration, no NULL parameter, types bound
    // (LONG), the value 1.
    commands.push(
        [
            &[0x17][..],
            &LAST.to_le_bytes(),
            &[0],
            &1u32.to_le_bytes(),
            &[0, 1, 0x03, 0x00],
            &1i32.to_le_bytes(),
        ]
        .concat(),
    );
    commands.push([&[0x1a][..], &LAST.to_le_bytes()].concat()); // STMT_RESET
    commands.push([&[0x19][..], &LAST.to_le_bytes()].concat()); // STMT_CLOSE
    commands.push(vec![0x0e]); // PING
    commands.push([&[0x02][..], b"app"].concat()); // INIT_DB
    commands.push([&[0x04][..], b"hostile_customers\0"].concat()); // FIELD_LIST
    commands.push(query("BEGIN"));
    commands.push(query("SELECT ssn, email FROM hostile_customers"));
    commands.push(query("COMMIT"));
    commands.push(query("SELECT 'end-of-script'"));
    let mut out = Vec::new();
    for c in commands {
        sqlgate_mysql::packet::encode(0, &c, &mut out);
    }
    out
}

#[tokio::test]
async fn hostile_client_streams_end_only_their_own_session() {
    let my = mariadb::shared();
    let mut direct = Conn::new(Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    direct
        .query_drop(
            "DROP TABLE IF EXISTS hostile_customers; \
             CREATE TABLE hostile_customers (id INT, email TEXT, ssn TEXT); \
             INSERT INTO hostile_customers VALUES (1, 'ann@example.com', '900-11-2222')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], MASKS);
    let gw = config.start().await;
    gw.catalog_has("hostile_customers").await;
    let port = gw.mysql_port();
    let mut healthy = Conn::new(Opts::from_url(&gw.mysql_url("bot", "bot-pw", "app")).unwrap())
        .await
        .unwrap();
    let panics_before = panics::watch();

    // The unmutated script runs through without an error, masked.
    let mut s = raw_login(port, "bot", "bot-pw", "app").await;
    s.write_all(&script()).await.unwrap();
    let answers = until(&mut s, b"end-of-script").await;
    for p in &answers {
        assert_ne!(
            p.iter().next(),
            Some(&0xff),
            "the unmutated script must run: {}",
            String::from_utf8_lossy(p)
        );
        assert!(
            !p.windows(7).any(|w| w == b"example"),
            "an email went out clear: {}",
            String::from_utf8_lossy(p)
        );
    }

    let inputs = sqlgate_net::hostile::mutations(
        0x5eed,
        STREAMS,
        &script(),
        &[0, 1, 0x03, 0x16, 0x17, 0xfb, 0xfe, 0xff],
    );
    let hung =
        barrage::stuck_sessions(inputs, AT_ONCE, || raw_login(port, "bot", "bot-pw", "app")).await;
    assert!(
        hung.is_empty(),
        "sessions still open 10 s after the client closed: {hung:?}"
    );
    assert_eq!(panics::watch(), panics_before, "the gateway panicked");

    // Everyone else is untouched, and still masked.
    let email: String = healthy
        .query_first("SELECT email FROM hostile_customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(email, "***");
    let mut fresh = Conn::new(Opts::from_url(&gw.mysql_url("bot", "bot-pw", "app")).unwrap())
        .await
        .unwrap();
    let n: Option<i64> = fresh
        .query_first("SELECT COUNT(*) FROM hostile_customers")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
}
