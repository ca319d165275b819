//! Shutdown keeps its grace period whatever the sessions are doing: a
//! statement running on the server, a large text being judged.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::support::binary::GatewayProcess;
use crate::support::gateway::TestConfig;
use crate::support::pg::{self, free_port};
use crate::support::raw::RawClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_gateway_within_its_grace_period() {
    let mut cfg = TestConfig::new(pg::shared());
    let port = free_port();
    cfg.toml = cfg
        .toml
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
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
