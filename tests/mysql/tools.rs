//! The binary with the MySQL listener: every statement parsed and logged.

use std::process::Command;
use std::time::Duration;

use crate::support::binary::GatewayProcess;
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::mariadb;
use crate::support::pg::free_port;

#[test]
fn every_mysql_statement_is_parsed_and_logged_with_its_session() {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    let port = free_port();
    cfg.toml = cfg
        .toml
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let path = cfg.write();
    let mut gw = GatewayProcess::start(&path, port, "info,sqlgate::statement=debug");
    let out = Command::new("mariadb")
        .args(["--no-defaults", "--host=127.0.0.1", "--user=agent"])
        .arg(format!("--port={port}"))
        .arg(format!("--password={AGENT_PW}"))
        .args([
            "app",
            "-e",
            "SELECT 42 AS answer; SELECT 1 /*!50000 + 1 */ AS two",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = gw
        .wait_for_line(
            |l| l.contains("SELECT 42 AS answer"),
            Duration::from_secs(10),
        )
        .expect("the statement is logged");
    for field in ["user=agent", "target_name=app", "session=", "origin=Query"] {
        assert!(line.contains(field), "{field} in {line}");
    }
    // A statement carrying a password is logged without it (the server
    // refuses it: no such user).
    let _ = Command::new("mariadb")
        .args(["--no-defaults", "--host=127.0.0.1", "--user=agent"])
        .arg(format!("--port={port}"))
        .arg(format!("--password={AGENT_PW}"))
        .args([
            "app",
            "-e",
            "ALTER USER 'zqxnobody'@'%' IDENTIFIED BY 'zqxlogsecret'",
        ])
        .output()
        .unwrap();
    let line = gw
        .wait_for_line(|l| l.contains("ALTER USER"), Duration::from_secs(10))
        .expect("the statement is logged");
    assert!(!line.contains("zqxlogsecret"), "{line}");
    assert!(
        gw.drain_lines().iter().all(|l| !l.contains("zqxlogsecret")),
        "the password reached the log"
    );
}

#[tokio::test]
async fn a_slow_client_slows_the_server_not_the_gateways_memory() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let my = mariadb::shared();
    let mut cfg = TestConfig::mysql(my);
    let port = free_port();
    cfg.toml = cfg
        .toml
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    let path = cfg.write();
    let gw = GatewayProcess::start(&path, port, "warn,sqlgate=info");
    let mut slow = super::relay::raw_session(port).await;
    let before = gw.rss_kib();
    // About 160 MB of rows that the client does not read for now.
    let marker = format!("slow-{}", std::process::id());
    let mut q = vec![0x03];
    q.extend_from_slice(
        format!("SELECT seq, REPEAT('x', 8000) /* {marker} */ FROM seq_1_to_20000").as_bytes(),
    );
    let mut out = Vec::new();
    sqlgate_mysql::packet::encode(0, &q, &mut out);
    slow.write_all(&out).await.unwrap();
    // The server must end up blocked writing to its client (the gateway).
    let mut direct = mysql_async::Conn::new(mysql_async::Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    loop {
        use mysql_async::prelude::*;
        let n: Option<i64> = direct
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE state = 'Writing to net' AND info LIKE CONCAT('%', ?, '%')",
                (marker.clone(),),
            )
            .await
            .unwrap();
        if n == Some(1) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let during = gw.rss_kib();
    assert!(
        during < before + 32 * 1024,
        "gateway memory grew from {before} KiB to {during} KiB while holding back a 160 MB result"
    );
    // Nothing is lost once the client reads: column count, 2 definitions,
    // EOF, 20000 rows, EOF.
    let mut packets = 0;
    let mut eofs = 0;
    while eofs < 2 {
        let mut hdr = [0u8; 4];
        slow.read_exact(&mut hdr).await.unwrap();
        let mut p = vec![0u8; hdr[0] as usize | (hdr[1] as usize) << 8 | (hdr[2] as usize) << 16];
        slow.read_exact(&mut p).await.unwrap();
        packets += 1;
        if p[0] == 0xfe && p.len() < 9 {
            eofs += 1;
        }
    }
    assert_eq!(packets, 1 + 2 + 1 + 20000 + 1);
}
