//! What a busy session must not do to the gateway: hold a shutdown past
//! its grace period (a statement running on the server, a large text being
//! judged), or stall the other sessions while its text is judged.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::support::binary::GatewayProcess;
use crate::support::gateway::TestConfig;
use crate::support::pg;
use crate::support::raw::RawClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_gateway_within_its_grace_period() {
    let mut cfg = TestConfig::new(pg::shared());
    let port = cfg.on_free_port();
    cfg.toml = format!("[gateway]\nshutdown_grace_secs = 1\n{}", cfg.toml);
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info");
    let addr = ([127, 0, 0, 1], port).into();

    // One session waits on the server; another sends a large text, which
    // the gateway is judging when the signal comes.
    let (mut sleeper, _) =
        RawClient::connect(addr, &[("user", "agent"), ("database", "app")], "agent-pw")
            .await
            .unwrap();
    let mut q = BytesMut::new();
    postgres_protocol::message::frontend::query("SELECT pg_sleep(60)", &mut q).unwrap();
    sleeper.send(&q).await;
    let (mut big, _) =
        RawClient::connect(addr, &[("user", "agent"), ("database", "app")], "agent-pw")
            .await
            .unwrap();
    let mut rows = String::from("INSERT INTO nowhere VALUES ");
    for i in 0..340_000 {
        rows.push_str(&format!("({i}, 'row {i}'),"));
    }
    rows.push_str("(0, '')");
    let mut q = BytesMut::new();
    postgres_protocol::message::frontend::query(&rows, &mut q).unwrap();
    big.send(&q).await;

    let signalled = Instant::now();
    let st = Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = gw.wait_exit(Duration::from_secs(10));
    let took = signalled.elapsed();
    assert!(status.is_some(), "still running 10 s after SIGTERM");
    assert!(
        took < Duration::from_secs(4),
        "a grace of 1 s took {took:?}"
    );
}

/// Judging a large text does not stall other sessions, even on one
/// worker thread (a current-thread runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judging_a_large_text_stalls_no_other_session() {
    let mut cfg = TestConfig::new(pg::shared());
    let port = cfg.on_free_port();
    cfg.toml = format!("[gateway]\nworker_threads = 1\n{}", cfg.toml);
    let path = cfg.write();
    let _gw = GatewayProcess::start(&path, port, "info");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let login = || async move {
        RawClient::connect(addr, &[("user", "agent"), ("database", "app")], "agent-pw")
            .await
            .unwrap()
            .0
    };
    let mut small = login().await;
    let mut big = login().await;
    let mut rows = String::from("SELECT count(*) FROM (VALUES ");
    for i in 0..300_000 {
        rows.push_str(&format!("({i}, 'row {i}'),"));
    }
    rows.push_str("(0, '')) v");
    let mut q = BytesMut::new();
    postgres_protocol::message::frontend::query(&rows, &mut q).unwrap();
    let started = Instant::now();
    let big_done = tokio::spawn(async move {
        big.send(&q).await;
        let answer = big.until_ready().await;
        (started.elapsed(), answer)
    });
    // Meanwhile, until it is answered, another session's queries: one of
    // them runs while the large text is judged.
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    while !big_done.is_finished() || asked == 0 {
        let t = Instant::now();
        let answer = small.query("SELECT 1").await;
        assert_eq!(answer.last().map(|m| m.0), Some(b'Z'));
        slowest = slowest.max(t.elapsed());
        asked += 1;
    }
    let (big_took, answer) = big_done.await.unwrap();
    assert!(
        answer.iter().any(|m| m.0 == b'D'),
        "the large text ran: {:?}",
        answer.iter().map(|m| m.0 as char).collect::<String>()
    );
    assert!(
        slowest * 3 < big_took,
        "a small query took {slowest:?} while the large text took {big_took:?}"
    );
}

/// Masked rows held whole share one budget across sessions: six sessions
/// reading 60 MiB masked rows at once do not take six rows' memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_large_masked_rows_stay_within_the_budget() {
    let server = pg::shared();
    let direct = crate::support::gateway::connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS budget_rows; CREATE TABLE budget_rows (id int, email text); \
             INSERT INTO budget_rows VALUES (1, repeat('q', 60 * 1024 * 1024)); \
             GRANT ALL ON budget_rows TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    let port = cfg.on_free_port();
    cfg.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.budget_rows.email\"]\nfunction = \"redact\"\n",
    );
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info");
    gw.wait_for_line(
        |l| l.contains("catalog read for masking"),
        Duration::from_secs(30),
    )
    .expect("the catalog is read");
    let before = gw.peak_kib();
    let url = format!("host=127.0.0.1 port={port} user=bot password=bot-pw dbname=app");
    let mut readers = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        readers.push(tokio::spawn(async move {
            let c = crate::support::gateway::connect(&url).await;
            let row = c
                .query_one("SELECT email FROM budget_rows", &[])
                .await
                .unwrap();
            row.get::<_, String>(0)
        }));
    }
    for r in readers {
        assert_eq!(r.await.unwrap(), "***");
    }
    let grown_mib = (gw.peak_kib() - before) / 1024;
    eprintln!("peak memory growth: {grown_mib} MiB");
    // The budget holds at most 256 MiB of rows and their copies; six rows
    // at once would be 360 MiB of rows alone.
    assert!(
        grown_mib < 330,
        "the gateway's peak memory grew by {grown_mib} MiB"
    );
    direct
        .batch_execute("DROP TABLE budget_rows")
        .await
        .unwrap();
}
