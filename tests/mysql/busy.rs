//! What a busy MySQL session must not do to the others: stall them while
//! its long text is judged (the PostgreSQL side is `tests/pg/busy.rs`).

use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::binary::GatewayProcess;
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::mariadb;
use crate::support::pg::free_port;

/// Judging a long text does not stall other sessions, on the one-worker
/// runtime (a current-thread one) as on any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judging_a_long_text_stalls_no_other_session() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    let port = free_port();
    cfg.toml = format!(
        "[gateway]\nworker_threads = 1\n{}",
        cfg.toml
            .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
    );
    let path = cfg.write();
    let _gw = GatewayProcess::start(&path, port, "info");
    let url = format!("mysql://agent:{AGENT_PW}@127.0.0.1:{port}/app");
    let mut small = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    let mut big = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    // About 4 MB of tokens: long to parse, quick to run.
    let mut long = String::from("SELECT 600000 IN (");
    for i in 0..600_000 {
        long.push_str(&format!("{i},"));
    }
    long.push_str("600000)");
    let started = Instant::now();
    let big_done = tokio::spawn(async move {
        let found: Option<i64> = big.query_first(long).await.unwrap();
        (started.elapsed(), found)
    });
    // Meanwhile, until it is answered, another session's queries: one of
    // them runs while the long text is judged.
    let mut slowest = Duration::ZERO;
    let mut asked = 0;
    while !big_done.is_finished() || asked == 0 {
        let t = Instant::now();
        let one: Option<i64> = small.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
        slowest = slowest.max(t.elapsed());
        asked += 1;
    }
    let (big_took, found) = big_done.await.unwrap();
    assert_eq!(found, Some(1), "the long text ran");
    assert!(
        slowest * 3 < big_took,
        "a small query took {slowest:?} while the long text took {big_took:?} ({asked} asked)"
    );
}
