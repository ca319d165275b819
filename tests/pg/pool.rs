//! Session pooling: reset before reuse, exhaustion, server restarts,
//! shutdown.

use std::time::{Duration, Instant};

use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::pg::{self, PgOptions, PgServer};

fn single_connection_config(pg: &PgServer) -> TestConfig {
    let mut cfg = TestConfig::new(pg);
    cfg.toml = cfg.toml.replace(
        "user = \"app_owner\"\n",
        "user = \"app_owner\"\npool_size = 1\nacquire_timeout_secs = 1\n",
    );
    cfg
}

#[tokio::test]
async fn a_released_connection_is_reset_before_reuse() {
    let gw = single_connection_config(pg::shared()).start().await;
    let c = gw.agent().await;
    let pid1: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    c.batch_execute(
        "SET search_path = pg_catalog; CREATE TEMP TABLE leftover (x int);
         PREPARE leftover_stmt AS SELECT 1; LISTEN leftover_channel; BEGIN; SELECT 1",
    )
    .await
    .unwrap();
    drop(c); // leaves with a transaction open
    let c = gw.agent().await;
    let pid2: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pid1, pid2, "the same server connection was reused");
    let row = c
        .query_one(
            "SELECT current_setting('search_path'),
                    (SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover_stmt'),
                    (SELECT count(*) FROM pg_listening_channels()),
                    to_regclass('pg_temp.leftover') IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "\"$user\", public");
    assert_eq!(row.get::<_, i64>(1), 0);
    assert_eq!(row.get::<_, i64>(2), 0);
    assert!(row.get::<_, bool>(3));
}

#[tokio::test]
async fn an_exhausted_pool_answers_after_the_acquire_timeout() {
    let gw = single_connection_config(pg::shared()).start().await;
    let holder = gw.agent().await;
    holder.batch_execute("SELECT 1").await.unwrap();
    let started = Instant::now();
    let e = match tokio_postgres::connect(
        &gw.conn_str("agent", AGENT_PW, "app"),
        tokio_postgres::NoTls,
    )
    .await
    {
        Ok(_) => panic!("the pool has one connection and it is taken"),
        Err(e) => e,
    };
    let waited = started.elapsed();
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "53300"));
    assert!(db.message().contains("in use"), "{}", db.message());
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    drop(holder);
}

#[tokio::test]
async fn sessions_recover_after_a_server_restart() {
    let pg = PgServer::start(PgOptions::default());
    let gw = TestConfig::new(&pg).start().await;
    let c = gw.agent().await;
    c.batch_execute("SELECT 1").await.unwrap();
    let idle = gw.agent().await;
    idle.batch_execute("SELECT 1").await.unwrap();
    drop(idle); // back in the pool, idle
    pg.stop();
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert!(e.as_db_error().is_some() || e.is_closed(), "{e}");
    let e = match tokio_postgres::connect(
        &gw.conn_str("agent", AGENT_PW, "app"),
        tokio_postgres::NoTls,
    )
    .await
    {
        Ok(_) => panic!("the server is down"),
        Err(e) => e,
    };
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "08001"));
    assert!(
        db.message().contains("target \"app\" is unavailable"),
        "{}",
        db.message()
    );
    pg.start_again();
    // The idle connection from before the restart is dead: it must not be
    // handed out.
    let c = gw.agent().await;
    let one: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_with_57p01() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let (c, conn) = tokio_postgres::connect(
        &gw.conn_str("agent", AGENT_PW, "app"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let driver = tokio::spawn(conn);
    c.batch_execute("SELECT 1").await.unwrap();
    gw.running.shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the session is closed promptly")
        .unwrap();
    let e = ended.unwrap_err();
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("57P01"),
        "{e}"
    );
    // New clients are not accepted any more.
    assert!(
        tokio::net::TcpStream::connect(gw.addr()).await.is_err() || {
            tokio_postgres::connect(
                &gw.conn_str("agent", AGENT_PW, "app"),
                tokio_postgres::NoTls,
            )
            .await
            .is_err()
        }
    );
}

#[tokio::test]
async fn one_users_sessions_take_no_more_than_its_share_of_the_pool() {
    let mut cfg = TestConfig::new(pg::shared());
    cfg.toml = cfg.toml.replace(
        "user = \"app_owner\"\n",
        "user = \"app_owner\"\npool_size = 3\nmax_per_user = 2\nacquire_timeout_secs = 1\n",
    );
    cfg.with_example_policy(&["app"], "");
    let gw = cfg.start().await;
    let url = |user: &str| gw.conn_str(user, &format!("{user}-pw"), "app");
    // Two idle sessions of one identity hold its whole share...
    let a = crate::support::gateway::connect(&url("bot")).await;
    let b = crate::support::gateway::connect(&url("bot")).await;
    let started = Instant::now();
    let e = tokio_postgres::connect(&url("bot"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("a third session of the same user is refused");
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert!(db.message().contains("\"bot\""), "{}", db.message());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once, not after the acquire timeout"
    );
    // ...and everyone else still gets a connection.
    let ci = crate::support::gateway::connect(&url("ci")).await;
    ci.batch_execute("SELECT 1").await.unwrap();
    drop((a, b));
}
