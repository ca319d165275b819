//! MySQL sessions: KILL with gateway ids, pooled connections reset between
//! clients, LOCAL INFILE refused, the mariadb client over TLS.

use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::gateway::{Gateway, TestConfig, AGENT_PW};
use crate::support::mariadb;

async fn agent(gw: &Gateway) -> Conn {
    Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap()
}

/// A direct connection, once the server runs a statement containing
/// `marker` (a condition, not a guess).
async fn running_on_server(my: &mariadb::MariaDb, marker: &str) -> Conn {
    let mut direct = Conn::new(Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    loop {
        let n: Option<i64> = direct
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE CONCAT('%', ?, '%') AND id <> CONNECTION_ID()",
                (marker,),
            )
            .await
            .unwrap();
        if n == Some(1) {
            return direct;
        }
        tokio::task::yield_now().await;
    }
}

fn server_code(e: mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(s) => s.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn kill_query_with_the_gateway_id_ends_a_sleep_within_two_seconds() {
    let my = mariadb::shared();
    let gw = TestConfig::mysql(my).start().await;
    let mut sleeper = agent(&gw).await;
    let id = sleeper.id();
    let marker = format!("kill-me-{}", std::process::id());
    let sql = format!("SELECT SLEEP(10) /* {marker} */");
    let running = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = sleeper.query_first(sql).await;
        r
    });
    // Wait until the server runs it (a condition, not a guess).
    running_on_server(my, &marker).await;
    let mut killer = agent(&gw).await;
    let started = Instant::now();
    killer.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the KILL lands within 2 s")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    // MariaDB ends an interrupted SLEEP with 1 (or an "interrupted" error).
    match result {
        Ok(v) => assert_eq!(v, Some(1)),
        Err(e) => assert_eq!(server_code(e), 1317),
    }
    // An id the gateway did not hand out never reaches the server.
    let e = killer.query_drop("KILL QUERY 987654").await.unwrap_err();
    assert_eq!(server_code(e), 1094);
    let e = killer.query_drop("KILL QUERY ID 1").await.unwrap_err();
    assert_eq!(server_code(e), 1235);
}

#[tokio::test]
async fn a_released_connection_is_reset_before_reuse() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    cfg.target_setting("pool_size = 1");
    let gw = cfg.start().await;
    let mut a = agent(&gw).await;
    let thread1: Option<i64> = a.query_first("SELECT CONNECTION_ID()").await.unwrap();
    a.query_drop("SET @leftover = 5; CREATE TEMPORARY TABLE leftover_t (x INT); USE information_schema; START TRANSACTION")
        .await
        .unwrap();
    a.disconnect().await.unwrap();
    let mut b = agent(&gw).await;
    let row: Option<(i64, Option<i64>, String)> = b
        .query_first("SELECT CONNECTION_ID(), @leftover, DATABASE()")
        .await
        .unwrap();
    let (thread2, leftover, db) = row.unwrap();
    assert_eq!(
        Some(thread2),
        thread1,
        "the same server connection was reused"
    );
    assert_eq!(leftover, None);
    assert_eq!(db, "app");
    let e = b.query_drop("SELECT * FROM leftover_t").await.unwrap_err();
    assert_eq!(server_code(e), 1146, "the temporary table is gone");
}

#[tokio::test]
async fn local_infile_is_refused_and_the_session_goes_on() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut c = agent(&gw).await;
    c.query_drop("CREATE TABLE IF NOT EXISTS infile_t (x TEXT)")
        .await
        .unwrap();
    let e = c
        .query_drop("LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE infile_t")
        .await
        .unwrap_err();
    assert!(
        matches!(server_code(e), 1148 | 4166),
        "refused by the server: LOCAL INFILE is off"
    );
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

// Multi-threaded: the in-process gateway must keep serving while this
// thread waits for the mariadb process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_client_works_over_tls() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    let crt = cfg.with_tls("mysql", &["localhost", "127.0.0.1"]);
    let gw = cfg.start().await;
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--host=127.0.0.1",
            "--user=agent",
            "--ssl",
            "--ssl-verify-server-cert",
        ])
        .arg(format!("--port={}", gw.mysql_port()))
        .arg(format!("--password={AGENT_PW}"))
        .arg(format!("--ssl-ca={}", crt.display()))
        .args([
            "app",
            "-e",
            "status; SELECT CONCAT('sum=', 20 + 22) AS r; SHOW TABLES;",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Cipher in use"), "{stdout}");
    assert!(stdout.contains("sum=42"), "{stdout}");
}

fn sysbench(port: u16, args: &[&str]) -> String {
    let out = Command::new("sysbench")
        .arg("oltp_read_write")
        .args([
            "--db-driver=mysql",
            "--mysql-host=127.0.0.1",
            "--mysql-user=agent",
            "--mysql-db=app",
        ])
        .arg(format!("--mysql-port={port}"))
        .arg(format!("--mysql-password={AGENT_PW}"))
        // Enough rows that four threads practically never deadlock on the
        // same ones (sysbench counts a server deadlock as an ignored error).
        .args(["--tables=4", "--table-size=25000"])
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sysbench {args:?}: {text}");
    text
}

fn counter(report: &str, name: &str) -> Option<u64> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_read_write_runs_without_errors_or_reconnects() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let port = gw.mysql_port();
    tokio::task::spawn_blocking(move || {
        let _ = sysbench(port, &["cleanup"]);
        sysbench(port, &["prepare"]);
        let report = sysbench(
            port,
            &["--threads=4", "--time=10", "--report-interval=0", "run"],
        );
        assert_eq!(counter(&report, "ignored errors:"), Some(0), "{report}");
        assert_eq!(counter(&report, "reconnects:"), Some(0), "{report}");
        assert!(
            counter(&report, "transactions:").unwrap_or(0) > 100,
            "{report}"
        );
        sysbench(port, &["cleanup"]);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn change_user_is_checked_by_the_gateway_and_resets_the_session() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    cfg.user("ops", "agent.pw", &["app"], "");
    let gw = cfg.start().await;
    let mut c = agent(&gw).await;
    // COM_RESET_CONNECTION from the client passes to the server.
    c.query_drop("SET @reset_me = 1").await.unwrap();
    c.reset().await.unwrap();
    let v: Option<Option<i64>> = c.query_first("SELECT @reset_me").await.unwrap();
    assert_eq!(v, Some(None));
    c.query_drop("SET @leftover = 7").await.unwrap();
    c.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("ops".into()))
            .with_pass(Some(AGENT_PW.into()))
            .with_db_name(Some("app".into())),
    )
    .await
    .unwrap();
    let row: Option<(Option<i64>, String)> =
        c.query_first("SELECT @leftover, DATABASE()").await.unwrap();
    assert_eq!(
        row,
        Some((None, "app".to_owned())),
        "a fresh session after the change"
    );
    // A wrong password is refused by the gateway.
    let e = c
        .change_user(
            mysql_async::ChangeUserOpts::default()
                .with_user(Some("agent".into()))
                .with_pass(Some("wrong".into())),
        )
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 1045);
}

#[tokio::test]
async fn caching_sha2_password_clients_log_in_on_the_fast_path() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    cfg.section("mysql", "default_auth = \"caching_sha2_password\"");
    let gw = cfg.start().await;
    // mysql_async answers with the plugin the greeting names.
    let mut c = agent(&gw).await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    let e = Conn::new(Opts::from_url(&gw.mysql_url("agent", "wrong", "app")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 1045);
}

// Multi-threaded: the in-process gateway must keep serving while this
// thread waits for the mariadb process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_password_users_need_tls() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    cfg.user("tokenish", "agent.pw", &["app"], "auth = \"password\"");
    let crt = cfg.with_tls("mysql", &["127.0.0.1"]);
    let gw = cfg.start().await;
    let client = |tls: bool| {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "--no-defaults",
            "--host=127.0.0.1",
            "--user=tokenish",
            "--enable-cleartext-plugin",
        ])
        .arg(format!("--port={}", gw.mysql_port()))
        .arg(format!("--password={AGENT_PW}"));
        if tls {
            cmd.arg("--ssl").arg(format!("--ssl-ca={}", crt.display()));
        } else {
            cmd.arg("--skip-ssl");
        }
        cmd.args(["app", "-e", "SELECT CONCAT('ok', 1)"])
            .output()
            .unwrap()
    };
    let out = client(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok1"));
    let out = client(false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only over TLS"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Multi-threaded: the in-process gateway must keep serving while this
// thread waits for the mariadb process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_infile_works_when_the_listener_enables_it() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    cfg.section("mysql", "local_infile = true");
    let file = cfg.path().join("rows.tsv");
    let rows: String = (1..=1000).map(|i| format!("{i}\trow {i}\n")).collect();
    std::fs::write(&file, rows).unwrap();
    let gw = cfg.start().await;
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS infile_on_t (id INT, name TEXT); DELETE FROM infile_on_t; \
         LOAD DATA LOCAL INFILE '{}' INTO TABLE infile_on_t; \
         SELECT CONCAT('rows=', COUNT(*), ' last=', MAX(name)) FROM infile_on_t",
        file.display()
    );
    let out = Command::new("mariadb")
        .args([
            "--no-defaults",
            "--host=127.0.0.1",
            "--user=agent",
            "--local-infile=1",
            "-N",
        ])
        .arg(format!("--port={}", gw.mysql_port()))
        .arg(format!("--password={AGENT_PW}"))
        .args(["app", "-e", &sql])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("rows=1000 last=row 999"), "{stdout}");
}

#[tokio::test]
async fn an_exhausted_pool_and_a_down_server_give_clear_errors() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    cfg.target_setting("pool_size = 1\nacquire_timeout_secs = 1");
    let gw = cfg.start().await;
    let mut holder = agent(&gw).await;
    holder.query_drop("DO 1").await.unwrap();
    let started = Instant::now();
    let e = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 1040);
    assert!(started.elapsed() >= Duration::from_secs(1));
    drop(holder);
    // A target whose server is not there.
    let mut cfg = TestConfig::mysql(mariadb::shared());
    let dead = crate::support::pg::free_port();
    cfg.toml = cfg.toml.replace(
        &format!("port = {}", mariadb::shared().port),
        &format!("port = {dead}"),
    );
    let gw = cfg.start().await;
    let e = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap_err();
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 2003);
            assert!(
                s.message.contains("target 'app' is unavailable"),
                "{}",
                s.message
            );
            assert!(!s.message.contains("app_owner"), "{}", s.message);
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn sessions_recover_after_a_server_restart() {
    let mut my = mariadb::MariaDb::start();
    let gw = TestConfig::mysql(&my).start().await;
    let mut c = agent(&gw).await;
    c.query_drop("DO 1").await.unwrap();
    let mut idle = agent(&gw).await;
    idle.query_drop("DO 1").await.unwrap();
    idle.disconnect().await.unwrap(); // back in the pool, idle
    my.stop();
    assert!(
        c.query_drop("DO 1").await.is_err(),
        "the session's server is gone"
    );
    let e = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 2003);
    my.start_again();
    // The idle connection from before the restart is dead and not handed out.
    let mut c = agent(&gw).await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// Backend logins the local MariaDB cannot show (it has no
/// caching_sha2_password and sends no auth switch to a client that named its
/// plugin): a second gateway plays the server. The chain is
/// mysql_async → gateway A → (TLS, verify-full) → gateway B → MariaDB,
/// where B names caching_sha2_password in its greeting and then switches
/// A's login to mysql_clear_password, since A's account there is a
/// cleartext one (only accepted over TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_tls_caching_sha2_and_auth_switch_through_a_second_gateway() {
    let my = mariadb::shared();
    let mut b_cfg = TestConfig::mysql(my);
    b_cfg.secret("a.pw", "gateway-a-pw");
    b_cfg.user("gateway_a", "a.pw", &["app"], "auth = \"password\"");
    let crt = b_cfg.with_tls("mysql", &["127.0.0.1"]);
    b_cfg.section("mysql", "default_auth = \"caching_sha2_password\"");
    let b = b_cfg.start().await;
    // A gateway in front of B, logging in to B as `user`.
    let in_front_of_b = |user: &str, password_file: &str, extra: &str| {
        let mut cfg = TestConfig::mysql(my);
        cfg.secret("a.pw", "gateway-a-pw");
        cfg.retarget(my.port, b.mysql_port(), user, password_file, extra);
        cfg
    };
    let tls = format!("tls = \"verify-full\"\ntls_ca_file = \"{}\"", crt.display());
    let a = in_front_of_b("gateway_a", "a.pw", &tls).start().await;
    let mut c = agent(&a).await;
    let row: Option<(i64, String)> = c.query_first("SELECT 40 + 2, DATABASE()").await.unwrap();
    assert_eq!(row, Some((42, "app".to_owned())));
    // A scramble account on B: A logs in with caching_sha2_password and B
    // answers on the fast path (0x01 0x03), without TLS.
    let sha2 = in_front_of_b("agent", "agent.pw", "").start().await;
    let mut c = agent(&sha2).await;
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    // Without TLS the cleartext account is refused by B: the cleartext
    // switch needs TLS.
    let plain = in_front_of_b("gateway_a", "a.pw", "").start().await;
    let e = Conn::new(Opts::from_url(&plain.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        server_code(e),
        2003,
        "A reports the target unavailable, not B's message"
    );
}

#[tokio::test]
async fn shutdown_ends_idle_sessions_with_1053() {
    use tokio::io::AsyncReadExt;
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut idle = super::relay::raw_session(gw.mysql_port()).await;
    gw.running.shutdown.cancel();
    let mut hdr = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), idle.read_exact(&mut hdr))
        .await
        .expect("the idle session hears about the shutdown promptly")
        .unwrap();
    let mut err = vec![0u8; hdr[0] as usize];
    idle.read_exact(&mut err).await.unwrap();
    assert_eq!(&err[..3], &[0xff, 0x1d, 0x04], "ERR 1053 server shutdown");
}

/// `KILL QUERY` of `CONNECTION_ID()` (the server's thread id) from a
/// second connection of the same identity cancels, even for an identity
/// whose policy denies `admin` (a cancel of one's own query is not an
/// administrative kill); another identity cannot reach the session.
#[tokio::test]
async fn kill_query_by_the_server_thread_id_is_a_cancel_for_the_same_identity() {
    let my = mariadb::shared();
    let mut cfg = TestConfig::mysql(my);
    cfg.with_example_policy(&["app"], "");
    let gw = cfg.start().await;
    let url = |user: &str| gw.mysql_url(user, &format!("{user}-pw"), "app");
    let mut sleeper = Conn::new(Opts::from_url(&url("bot")).unwrap())
        .await
        .unwrap();
    let thread: u64 = sleeper
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        u64::from(sleeper.id()),
        thread,
        "the handshake id is the gateway's"
    );
    let marker = format!("cancel-me-{}", std::process::id());
    let sql = format!("SELECT SLEEP(10) /* {marker} */");
    let running = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = sleeper.query_first(sql).await;
        r
    });
    running_on_server(my, &marker).await;
    // Another identity: unknown to it.
    let mut ci = Conn::new(Opts::from_url(&url("ci")).unwrap())
        .await
        .unwrap();
    let e = ci
        .query_drop(format!("KILL QUERY {thread}"))
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 1094);
    // The same identity, whose policy denies admin: a cancel.
    let mut killer = Conn::new(Opts::from_url(&url("bot")).unwrap())
        .await
        .unwrap();
    killer
        .query_drop(format!("KILL QUERY {thread}"))
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the KILL lands within 2 s")
        .unwrap();
    match result {
        Ok(v) => assert_eq!(v, Some(1)),
        Err(e) => assert_eq!(server_code(e), 1317),
    }
    // Killing a connection stays an administrative act: refused by policy.
    let e = killer
        .query_drop(format!("KILL CONNECTION {thread}"))
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 1227);
}

/// Targets `app` and `app2` (the same database), and user `multi` (the
/// agent's password) on both, its default target `app2`.
fn multi_target_config(my: &mariadb::MariaDb) -> TestConfig {
    let mut cfg = TestConfig::mysql(my);
    cfg.toml.push_str(&format!(
        "\n[[target]]\nname = \"app2\"\nkind = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\n\
         database = \"app\"\nuser = \"app_owner\"\npassword_file = \"app.pw\"\n",
        my.port
    ));
    cfg.user(
        "multi",
        "agent.pw",
        &["app", "app2"],
        "default_target = \"app2\"",
    );
    cfg
}

/// A user of several targets who connects without a database goes to
/// their `default_target` (the mariadb CLI's Ctrl-C connects so, to send
/// `KILL QUERY <id>`); a KILL by gateway connection id reaches the
/// identity's session on another target, a server thread id only on the
/// session's own.
#[tokio::test]
async fn a_connection_without_a_database_goes_to_the_default_target_and_can_cancel() {
    let my = mariadb::shared();
    let cfg = multi_target_config(my);
    let gw = cfg.start().await;
    let url = |db: &str| {
        let base = gw.mysql_url("multi", AGENT_PW, "app");
        match db {
            "" => base.trim_end_matches("/app").to_owned(),
            _ => base,
        }
    };
    let mut sleeper = Conn::new(Opts::from_url(&url("app")).unwrap())
        .await
        .unwrap();
    let gateway_id = sleeper.id();
    let thread: u64 = sleeper
        .query_first("SELECT CONNECTION_ID()")
        .await
        .unwrap()
        .unwrap();
    let marker = format!("ctrl-c-{}", std::process::id());
    let sql = format!("SELECT SLEEP(10) /* {marker} */");
    let running = tokio::spawn(async move {
        let r: Result<Option<i64>, _> = sleeper.query_first(sql).await;
        r
    });
    running_on_server(my, &marker).await;
    // No database: the default target, not 1046.
    let mut ctrl_c = Conn::new(Opts::from_url(&url("")).unwrap()).await.unwrap();
    ctrl_c.ping().await.unwrap();
    // A server thread id names a thread of this session's own target only.
    let e = ctrl_c
        .query_drop(format!("KILL QUERY {thread}"))
        .await
        .unwrap_err();
    assert_eq!(server_code(e), 1094);
    // The gateway's id reaches the session on the other target.
    ctrl_c
        .query_drop(format!("KILL QUERY {gateway_id}"))
        .await
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the KILL lands within 2 s")
        .unwrap();
    match result {
        Ok(v) => assert_eq!(v, Some(1)),
        Err(e) => assert_eq!(server_code(e), 1317),
    }
}

/// The compressed protocol (`mariadb --compress`) through the gateway:
/// 100,000 rows and a 20 MiB value arrive as they do directly.
#[tokio::test]
async fn the_compressed_protocol_carries_large_results_unchanged() {
    let my = mariadb::shared();
    let cfg = TestConfig::mysql(my);
    let gw = cfg.start().await;
    let gw_port = gw.mysql_port();
    let direct_port = my.port;
    let out = tokio::task::spawn_blocking(move || {
        let run = |port: u16, user: &str, password: &str, compress: bool, sql: &str| {
            let mut c = Command::new("mariadb");
            c.args([
                "--no-defaults",
                "--host=127.0.0.1",
                "--batch",
                "--skip-column-names",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--user={user}"))
            .arg(format!("--password={password}"))
            .arg("--max-allowed-packet=64M");
            if compress {
                c.arg("--compress");
            }
            let out = c.args(["app", "-e", sql]).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let mut results = Vec::new();
        for sql in [
            "SELECT seq, md5(seq) FROM seq_1_to_100000",
            "SELECT REPEAT('x', 20971520) AS big, 'after' AS tail",
        ] {
            let direct = run(direct_port, "app_owner", mariadb::APP_OWNER_PW, false, sql);
            let through = run(gw_port, "agent", AGENT_PW, true, sql);
            results.push((direct, through));
        }
        results
    })
    .await
    .unwrap();
    for (direct, through) in out {
        assert!(direct.len() > 1_000_000);
        assert!(direct == through, "the compressed session's output differs");
    }
    // A driver's compressed session sends a value of 17 MiB (more than
    // one packet) and reads it back.
    let opts = mysql_async::OptsBuilder::from_opts(
        Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap(),
    )
    .compression(mysql_async::Compression::fast());
    let mut driver = Conn::new(opts).await.unwrap();
    let big = "y".repeat(17 << 20);
    let back: Option<(i64, String)> = driver
        .exec_first("SELECT LENGTH(?), RIGHT(?, 3)", (big.clone(), big))
        .await
        .unwrap();
    assert_eq!(back, Some((17 << 20, "yyy".to_owned())));
    drop(driver);
    // And it was compressed: the gateway sent the 20 MiB session far
    // fewer bytes (the recording counts the bytes on the wire).
    let rec = gw.running.recorder.clone().unwrap();
    let store = cfg.path().join(sqlgate::store::config::DEFAULT_FILE);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sent: Vec<u64> = loop {
        rec.flush();
        let mut s = sqlgate::store::sqlite::SqliteStore::open(&store).unwrap();
        use sqlgate::store::Store;
        let mut ends = Vec::new();
        for id in s.session_ids().unwrap() {
            for e in sqlgate::store::events(&s.rows(&id).unwrap()) {
                if e.kind == sqlgate::store::Kind::SessionEnd {
                    let end: sqlgate::store::SessionEnd = serde_json::from_str(&e.body).unwrap();
                    ends.push(end.bytes_out);
                }
            }
        }
        if ends.len() >= 3 {
            break ends;
        }
        assert!(Instant::now() < deadline, "sessions never ended");
        tokio::task::yield_now().await;
    };
    assert!(
        sent.iter().all(|&b| b < 8 << 20),
        "bytes sent per session: {sent:?}"
    );
}

/// The mariadb CLI's own Ctrl-C, for a user of several targets: SIGINT
/// makes the CLI open a connection without a database and send `KILL
/// QUERY <the id its handshake gave>`; the running query ends at once
/// with "Query execution was interrupted" instead of "cannot connect to
/// server to kill query".
#[tokio::test]
async fn the_mariadb_clis_ctrl_c_cancels_a_running_query() {
    let my = mariadb::shared();
    let cfg = multi_target_config(my);
    let gw = cfg.start().await;
    let marker = format!("cli-ctrl-c-{}", std::process::id());
    let cli = Command::new("mariadb")
        .args(["--no-defaults", "--host=127.0.0.1", "--user=multi"])
        .arg(format!("--port={}", gw.mysql_port()))
        .arg(format!("--password={AGENT_PW}"))
        .args(["app", "-e"])
        // (The CLI strips comments: the marker is a value.)
        .arg(format!("SELECT SLEEP(30), '{marker}'"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    running_on_server(my, &marker).await;
    let interrupted = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || cli.wait_with_output().unwrap())
        .await
        .unwrap();
    let took = interrupted.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("Query execution was interrupted"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("query killed") || stderr.contains("query killed"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("cannot connect"), "{stderr}");
    // Well before the 30 s sleep would have ended by itself.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// An operator ends a live MySQL session through the admin API: the
/// client's next command fails and the session leaves the list.
#[tokio::test]
async fn an_operator_ends_a_live_mysql_session() {
    use crate::support::approvals::{self, api};
    let my = mariadb::shared();
    let mut cfg = TestConfig::mysql(my);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let mut agent = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap();
    agent.query_drop("SELECT 1").await.unwrap();
    let token = Some(approvals::token("carol"));
    let (status, live) = api(&gw, "GET", "/api/sessions/live", token, None).await;
    assert_eq!(status, 200);
    let sessions = live.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{live}");
    assert_eq!(sessions[0]["protocol"], "mysql");
    assert_eq!(sessions[0]["user"], "agent");
    let id = sessions[0]["id"].as_u64().unwrap();
    let path = format!("/api/sessions/live/mysql/{id}/end");
    let (status, _) = api(&gw, "POST", &path, token, Some(serde_json::json!({}))).await;
    assert_eq!(status, 200);
    // The ERR (1927) comes unasked, as a server's for a killed idle
    // connection does: the driver fails the next command.
    agent
        .query_drop("SELECT 1")
        .await
        .expect_err("the session was ended");
    let (_, live) = api(&gw, "GET", "/api/sessions/live", token, None).await;
    assert_eq!(live, serde_json::json!([]));
}

/// A MySQL target whose TLS settings do not load (a CA file that holds no
/// certificate) stops the gateway from starting with an error naming the
/// target: it never connects to that server without TLS. (Before, the
/// MySQL pools dropped the error and connected in clear.)
#[tokio::test]
async fn a_mysql_target_whose_tls_does_not_load_stops_the_start() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    std::fs::write(cfg.path().join("not-a-ca.pem"), "no certificate here\n").unwrap();
    cfg.target_setting("tls = \"verify-full\"\ntls_ca_file = \"not-a-ca.pem\"");
    sqlgate::install_crypto_provider();
    let config = sqlgate::config::Config::load(&cfg.write()).expect("the file checks");
    let e = match sqlgate::server::start(&config).await {
        Ok(_) => panic!("the gateway started with a target whose TLS did not load"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("target \"app\""), "{e}");
}
