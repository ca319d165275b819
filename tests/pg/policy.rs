//! The example policy on the PostgreSQL path: agents read and are refused
//! what they may not run, on every path, with the data unchanged; the CI
//! user migrates and has its DROP held for review; identities that can
//! never write get read-only server sessions.

use std::sync::Arc;

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::SimpleQueryMessage;

use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

/// Only reads, transactions and session settings: such sessions are
/// made read-only on the server.
pub const VIEWERS: &str = r#"
[[rule]]
name = "viewers"
groups = ["viewers"]
targets = ["*"]
allow = ["read", "tx", "session"]
"#;

fn refusal(e: &tokio_postgres::Error) -> &tokio_postgres::error::DbError {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    assert_eq!(db.code().code(), "42501", "{db:?}");
    assert_eq!(db.severity(), "ERROR", "{db:?}");
    db
}

async fn rows(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn agents_read_and_are_refused_everything_else_on_every_path() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS pol_orders; \
             CREATE TABLE pol_orders (id int PRIMARY KEY, total int); \
             INSERT INTO pol_orders VALUES (1, 10), (2, 20), (3, 30); \
             GRANT ALL ON pol_orders TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;

    // Reads run, in both protocols.
    assert_eq!(rows(&bot, "SELECT count(*) FROM pol_orders").await, 3);
    let msgs = bot
        .simple_query("SELECT total FROM pol_orders WHERE id = 2")
        .await
        .unwrap();
    assert!(msgs
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("20"))));

    // A write is held for review (refused until approvals exist).
    let e = bot
        .simple_query("DELETE FROM pol_orders")
        .await
        .unwrap_err();
    let db = refusal(&e);
    assert!(
        db.message().contains("requires approval"),
        "{}",
        db.message()
    );
    assert!(
        db.message().contains("agents-read-only"),
        "{}",
        db.message()
    );
    assert!(db.detail().unwrap().contains("write.delete"), "{db:?}");

    // DDL, a data-modifying CTE, COPY TO PROGRAM: denied.
    for sql in [
        "DROP TABLE pol_orders",
        "WITH d AS (DELETE FROM pol_orders RETURNING *) SELECT count(*) FROM d",
        "COPY pol_orders TO PROGRAM 'cat > /dev/null'",
        "EXPLAIN ANALYZE DELETE FROM pol_orders",
        "/* harmless */ dRoP    TABLE \"pol_orders\"",
    ] {
        let e = bot.simple_query(sql).await.unwrap_err();
        refusal(&e);
        // The session stays usable.
        assert_eq!(
            rows(&bot, "SELECT count(*) FROM pol_orders").await,
            3,
            "{sql}"
        );
    }

    // Multi-statement smuggling: nothing of the text runs, and the
    // position points at the refused statement.
    let smuggle = "SELECT set_config('application_name', 'smuggled', false); DROP TABLE pol_orders";
    let e = bot.simple_query(smuggle).await.unwrap_err();
    let db = refusal(&e);
    assert_eq!(
        db.position(),
        Some(&ErrorPosition::Original(
            smuggle.find("DROP").unwrap() as u32 + 1
        ))
    );
    let name: String = bot
        .query_one("SHOW application_name", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(
        name, "smuggled",
        "the allowed first statement must not have run"
    );

    // Extended protocol: refused at Parse; the session goes on.
    let e = bot
        .prepare("DELETE FROM pol_orders WHERE id = $1")
        .await
        .unwrap_err();
    refusal(&e);
    let e = bot
        .execute("UPDATE pol_orders SET total = $1", &[&0i32])
        .await
        .unwrap_err();
    refusal(&e);
    let stmt = bot
        .prepare("SELECT total FROM pol_orders WHERE id = $1")
        .await
        .unwrap();
    let total: i32 = bot.query_one(&stmt, &[&1i32]).await.unwrap().get(0);
    assert_eq!(total, 10);

    // In a transaction block a refusal is an error like any other: the
    // block is aborted until ROLLBACK.
    bot.batch_execute("BEGIN").await.unwrap();
    refusal(&bot.simple_query("DROP TABLE pol_orders").await.unwrap_err());
    let e = bot.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "25P02");
    bot.batch_execute("ROLLBACK").await.unwrap();

    // SQL-level PREPARE is judged by what it prepares.
    refusal(
        &bot.simple_query("PREPARE p AS DELETE FROM pol_orders")
            .await
            .unwrap_err(),
    );
    bot.batch_execute("PREPARE q AS SELECT count(*) FROM pol_orders; EXECUTE q")
        .await
        .unwrap();

    // Nothing changed on the server.
    assert_eq!(rows(&direct, "SELECT count(*) FROM pol_orders").await, 3);
    assert_eq!(
        rows(&direct, "SELECT sum(total)::int8 FROM pol_orders").await,
        60
    );
}

#[tokio::test]
async fn ci_migrates_and_its_drop_is_held_for_review() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute("DROP TABLE IF EXISTS pol_migrated")
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let ci = connect(&gw.conn_str("ci", "ci-pw", "app")).await;
    ci.batch_execute(
        "BEGIN; \
         CREATE TABLE pol_migrated (id int PRIMARY KEY); \
         ALTER TABLE pol_migrated ADD COLUMN name text; \
         CREATE INDEX pol_migrated_name ON pol_migrated (name); \
         INSERT INTO pol_migrated VALUES (1, 'one'); \
         COMMIT",
    )
    .await
    .unwrap();
    let e = ci
        .simple_query("DROP TABLE pol_migrated")
        .await
        .unwrap_err();
    let db = refusal(&e);
    assert!(
        db.message().contains("requires approval"),
        "{}",
        db.message()
    );
    assert!(db.message().contains("ci-migrations"), "{}", db.message());
    assert!(db.message().contains("ddl.drop"), "{}", db.message());
    let e = ci
        .simple_query("DELETE FROM pol_migrated")
        .await
        .unwrap_err();
    assert!(refusal(&e).message().contains("write.unbounded"));
    // Its table is there, with its row.
    assert_eq!(rows(&direct, "SELECT count(*) FROM pol_migrated").await, 1);
    direct
        .batch_execute("DROP TABLE pol_migrated")
        .await
        .unwrap();
}

/// Hooks that let every statement through (a classifier that misjudged
/// everything) but keep the policy's decision on read-only sessions.
struct Misjudging(sqlgate::hooks::PgHooks);

struct AllowAll(Box<dyn sqlgate_postgres::SessionHooks>);

impl sqlgate_postgres::SessionHooks for AllowAll {
    fn statement(
        &mut self,
        _: sqlgate_postgres::StatementOrigin,
        _: &[u8],
    ) -> sqlgate_postgres::hooks::Verdict<sqlgate_postgres::Masks> {
        sqlgate_postgres::hooks::Verdict::Allow(Vec::new())
    }
    fn read_only(&mut self) -> bool {
        self.0.read_only()
    }
}

impl sqlgate_postgres::Hooks for Misjudging {
    fn user(&self, name: &str) -> Option<sqlgate_postgres::UserAuth> {
        self.0.user(name)
    }
    fn route(
        &self,
        user: &sqlgate_net::identity::Identity,
        database: &str,
    ) -> Result<sqlgate_postgres::Route, sqlgate_postgres::messages::error_response::ClientError>
    {
        self.0.route(user, database)
    }
    fn session(
        &self,
        session: &sqlgate_postgres::SessionInfo,
    ) -> Box<dyn sqlgate_postgres::SessionHooks> {
        Box::new(AllowAll(self.0.session(session)))
    }
}

#[tokio::test]
async fn a_write_below_the_classifier_fails_in_a_read_only_session() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS pol_ro; CREATE TABLE pol_ro (id int); \
             INSERT INTO pol_ro VALUES (1); GRANT ALL ON pol_ro TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], VIEWERS);
    let path = config.write();
    sqlgate::install_crypto_provider();
    let cfg = sqlgate::config::Config::load(&path).unwrap();
    let gw = sqlgate_testing_gateway(&cfg, Misjudging).await;
    let url = |user: &str| {
        format!(
            "host=127.0.0.1 port={} user={user} password={user}-pw dbname=app",
            gw.0
        )
    };

    // The viewer's session is read-only on the server: the write the
    // hooks let through fails there, with the server's own error.
    let viewer = connect(&url("viewer")).await;
    let e = viewer
        .batch_execute("DELETE FROM pol_ro")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "25006", "{e}");
    let e = viewer
        .batch_execute("CREATE TABLE pol_ro_new (id int)")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "25006", "{e}");
    assert_eq!(rows(&viewer, "SELECT count(*) FROM pol_ro").await, 1);

    // An agent's writes are reviewed, and until a review can let one run
    // its session is read-only too: the misjudged write fails there.
    let bot = connect(&url("bot")).await;
    let e = bot
        .batch_execute("UPDATE pol_ro SET id = 2")
        .await
        .unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "25006", "{e}");
    // An identity the policy lets write has a read-write session.
    let ci = connect(&url("ci")).await;
    ci.batch_execute("UPDATE pol_ro SET id = 2").await.unwrap();
    assert_eq!(
        rows(&direct, "SELECT count(*) FROM pol_ro WHERE id = 2").await,
        1
    );
    gw.1.cancel();
}

/// Serves `cfg`'s PostgreSQL listener with hooks wrapped by `wrap`.
async fn sqlgate_testing_gateway<H: sqlgate_postgres::Hooks>(
    cfg: &sqlgate::config::Config,
    wrap: impl FnOnce(sqlgate::hooks::PgHooks) -> H,
) -> (u16, tokio_util::sync::CancellationToken) {
    let running = sqlgate::server::start(cfg).await.unwrap();
    // The real gateway's engine and pools, behind the wrapping hooks.
    let hooks = wrap(sqlgate::pools::pg_hooks(cfg, running.engine.clone()).unwrap());
    running.shutdown.cancel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let gateway = sqlgate_postgres::Gateway::new(
        Arc::new(hooks),
        sqlgate_postgres::FrontendConfig {
            tls: None,
            require_tls: false,
            handshake_timeout: std::time::Duration::from_secs(5),
            limits: sqlgate_postgres::RelayLimits {
                max_statement_len: 1 << 20,
            },
            live: Default::default(),
        },
    );
    tokio::spawn(sqlgate_postgres::server::serve(
        listener,
        gateway,
        shutdown.clone(),
        std::time::Duration::from_secs(1),
    ));
    (port, shutdown)
}

/// The wire, message by message: a refusal in the middle of a pipelined
/// batch comes after the responses to what came before it, a refused
/// Parse followed by Flush is answered without Sync, and a fastpath
/// FunctionCall (a function by OID, no text) is `code.function`.
#[tokio::test]
async fn refusals_keep_the_protocol_in_order() {
    use crate::support::raw::{error_field, RawClient};
    use postgres_protocol::message::frontend;

    let server = pg::shared();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let (mut c, _) =
        RawClient::connect(gw.addr(), &[("user", "bot"), ("database", "app")], "bot-pw")
            .await
            .unwrap();
    let tags =
        |msgs: &[(u8, bytes::Bytes)]| msgs.iter().map(|(t, _)| *t as char).collect::<String>();

    // Bind the unnamed portal to `stmt`, without parameters.
    let bind = |stmt: &str, out: &mut bytes::BytesMut| {
        frontend::bind(
            "",
            stmt,
            [],
            std::iter::empty::<i32>(),
            |_: i32, _: &mut bytes::BytesMut| {
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(postgres_protocol::IsNull::No)
            },
            [],
            out,
        )
        .map_err(|_| ())
        .unwrap()
    };
    let mut out = bytes::BytesMut::new();
    frontend::parse("", "SELECT 41 + 1", [], &mut out).unwrap();
    bind("", &mut out);
    frontend::execute("", 0, &mut out).unwrap();
    frontend::parse("s2", "DELETE FROM nowhere", [], &mut out).unwrap();
    bind("s2", &mut out);
    frontend::execute("", 0, &mut out).unwrap();
    frontend::sync(&mut out);
    c.send(&out).await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "12DCEZ", "{msgs:?}");
    let err = &msgs[4].1;
    assert_eq!(error_field(err, b'C').as_deref(), Some("42501"));
    assert!(error_field(err, b'M').unwrap().contains("write.delete"));

    // Parse + Describe + Flush: the client waits without a Sync.
    out.clear();
    frontend::parse("s3", "DROP TABLE nowhere", [], &mut out).unwrap();
    frontend::describe(b'S', "s3", &mut out).unwrap();
    frontend::flush(&mut out);
    c.send(&out).await;
    let (tag, body) = c.read().await.unwrap();
    assert_eq!(tag, b'E');
    assert_eq!(error_field(&body, b'C').as_deref(), Some("42501"));
    out.clear();
    frontend::sync(&mut out);
    c.send(&out).await;
    assert_eq!(tags(&c.until_ready().await), "Z");

    // FunctionCall of pg_backend_pid() (OID 2026): refused, session goes on.
    let mut call = vec![b'F'];
    let body: Vec<u8> = [
        &2026i32.to_be_bytes()[..],
        &0i16.to_be_bytes(),
        &0i16.to_be_bytes(),
        &0i16.to_be_bytes(),
    ]
    .concat();
    call.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    call.extend_from_slice(&body);
    c.send(&call).await;
    let msgs = c.until_ready().await;
    assert_eq!(tags(&msgs), "EZ", "{msgs:?}");
    assert!(error_field(&msgs[0].1, b'D')
        .unwrap()
        .contains("FunctionCall"));
    let msgs = c.query("SELECT 1").await;
    assert!(msgs.iter().any(|(t, _)| *t == b'D'), "{msgs:?}");
}

#[tokio::test]
async fn notify_reaches_beyond_the_session_and_is_a_write() {
    let mut config = TestConfig::new(pg::shared());
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let listener = connect(&pg::shared().direct_conn_str("app")).await;
    listener.batch_execute("LISTEN pol_events").await.unwrap();
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    // Listening is the session's own business...
    bot.batch_execute("LISTEN pol_events; UNLISTEN pol_events")
        .await
        .unwrap();
    // ...sending to every listener is not: reviewed as a write.
    for sql in [
        "NOTIFY pol_events, 'from an agent'",
        "SELECT pg_notify('pol_events', 'from an agent')",
    ] {
        let e = bot.simple_query(sql).await.unwrap_err();
        let db = refusal(&e);
        assert!(
            db.message().contains("write.notify"),
            "{sql}: {}",
            db.message()
        );
    }
}
