//! Hostile client byte streams through the real gateway: a logged-in
//! masked identity sends a mutated or cut-off session (simple and extended
//! protocol, masked columns, transactions), then closes its side. Each
//! such connection must end promptly (no hang waiting on a state the
//! bytes never complete, no spin), the gateway must raise no panic, and a
//! session opened before the barrage keeps working, still masked.

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

use crate::support::gateway::{connect, TestConfig};
use crate::support::raw::RawClient;
use crate::support::{barrage, panics, pg};

const MASKS: &str = r#"
[[mask]]
name = "hostile-pii"
columns = ["public.hostile_customers.email"]
function = "redact"
except_users = ["ci"]
"#;

/// How many hostile sessions, and how many at once.
const STREAMS: usize = 96;
const AT_ONCE: usize = 6;

/// A session's worth of client messages after login.
fn script() -> Vec<u8> {
    let mut b = BytesMut::new();
    frontend::query("SELECT id, email FROM hostile_customers", &mut b).unwrap();
    frontend::parse(
        "s1",
        "SELECT email, ssn FROM hostile_customers WHERE id = $1",
        [23],
        &mut b,
    )
    .unwrap();
    frontend::bind(
        "p1",
        "s1",
        [1],
        [1i32],
        |v, out| {
            out.extend_from_slice(&v.to_be_bytes());
            Ok(IsNull::No)
        },
        [1],
        &mut b,
    )
    .map_err(|_| "bind")
    .unwrap();
    frontend::describe(b'P', "p1", &mut b).unwrap();
    frontend::execute("p1", 0, &mut b).unwrap();
    frontend::sync(&mut b);
    frontend::parse("", "SELECT email FROM hostile_customers", [], &mut b).unwrap();
    frontend::bind(
        "",
        "",
        [],
        Vec::<i32>::new(),
        |_, _| Ok(IsNull::No),
        [0],
        &mut b,
    )
    .map_err(|_| "bind")
    .unwrap();
    frontend::execute("", 1, &mut b).unwrap();
    frontend::close(b'S', "s1", &mut b).unwrap();
    frontend::sync(&mut b);
    frontend::query(
        "BEGIN; SELECT ssn, email FROM hostile_customers; COMMIT",
        &mut b,
    )
    .unwrap();
    b.to_vec()
}

#[tokio::test]
async fn hostile_client_streams_end_only_their_own_session() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS hostile_customers; \
             CREATE TABLE hostile_customers (id int, email text, ssn text); \
             INSERT INTO hostile_customers VALUES (1, 'ann@example.com', '900-11-2222'); \
             GRANT ALL ON hostile_customers TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], MASKS);
    let gw = config.start().await;
    gw.catalog_has("hostile_customers").await;
    let healthy = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    let panics_before = panics::watch();

    // The unmutated script runs through (a sanity check of the script).
    let (mut c, _) =
        RawClient::connect(gw.addr(), &[("user", "bot"), ("database", "app")], "bot-pw")
            .await
            .unwrap();
    c.send(&script()).await;
    let mut readies = 0;
    while readies < 3 {
        let (tag, _) = c.read().await.expect("the script's answers");
        assert_ne!(tag, b'E', "the unmutated script must run");
        readies += usize::from(tag == b'Z');
    }

    let inputs = sqlgate_net::hostile::mutations(
        0x5eed,
        STREAMS,
        &script(),
        &[0, 1, 0x7f, 0x80, 0xff, b'S'],
    );
    let addr = gw.addr();
    let hung = barrage::stuck_sessions(inputs, AT_ONCE, || async move {
        RawClient::connect(addr, &[("user", "bot"), ("database", "app")], "bot-pw")
            .await
            .unwrap()
            .0
            .stream
    })
    .await;
    assert!(
        hung.is_empty(),
        "sessions still open 10 s after the client closed: {hung:?}"
    );
    assert_eq!(panics::watch(), panics_before, "the gateway panicked");

    // Everyone else is untouched, and still masked.
    let rows = healthy
        .query("SELECT email FROM hostile_customers", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, String>(0), "***");
    let fresh = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    let n: i64 = fresh
        .query_one("SELECT count(*) FROM hostile_customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}
