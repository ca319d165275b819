//! Commands drivers rarely send, byte by byte: cursors with COM_STMT_FETCH,
//! COM_STMT_RESET/CLOSE, COM_FIELD_LIST, COM_INIT_DB, COM_STATISTICS,
//! COM_PING. Each answer must arrive whole and the session stay in step.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::relay::raw_session;
use crate::support::gateway::TestConfig;
use crate::support::mariadb;

async fn send(s: &mut TcpStream, payload: &[u8]) {
    let mut out = Vec::new();
    sqlgate_mysql::packet::encode(0, payload, &mut out);
    s.write_all(&out).await.unwrap();
}

async fn packet(s: &mut TcpStream) -> Vec<u8> {
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await.unwrap();
    let mut p = vec![0u8; hdr[0] as usize | (hdr[1] as usize) << 8 | (hdr[2] as usize) << 16];
    s.read_exact(&mut p).await.unwrap();
    p
}

/// Packets up to and including a classic EOF (or an ERR).
async fn until_eof(s: &mut TcpStream) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let p = packet(s).await;
        let end = p.first() == Some(&0xff) || (p.first() == Some(&0xfe) && p.len() < 9);
        out.push(p);
        if end {
            return out;
        }
    }
}

fn status(eof: &[u8]) -> u16 {
    u16::from_le_bytes([eof[3], eof[4]])
}

#[tokio::test]
async fn cursors_field_lists_and_admin_commands_stay_in_step() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut s = raw_session(gw.mysql_port()).await;
    // COM_STMT_PREPARE: OK, 0 params, 1 column (+ EOF).
    let mut prep = vec![0x16];
    prep.extend_from_slice(b"SELECT seq FROM seq_1_to_10");
    send(&mut s, &prep).await;
    let ok = packet(&mut s).await;
    assert_eq!(ok[0], 0x00);
    let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let columns = until_eof(&mut s).await;
    assert_eq!(columns.len(), 2, "one column definition and EOF");
    // COM_STMT_EXECUTE with a read-only cursor: metadata only.
    let mut exec = vec![0x17];
    exec.extend_from_slice(&stmt.to_le_bytes());
    exec.push(0x01); // CURSOR_TYPE_READ_ONLY
    exec.extend_from_slice(&1u32.to_le_bytes());
    send(&mut s, &exec).await;
    let meta = until_eof(&mut s).await;
    assert_eq!(meta[0], vec![1], "one column");
    assert_ne!(status(meta.last().unwrap()) & 0x0040, 0, "cursor exists");
    // COM_STMT_FETCH 4, then the rest.
    let fetch = |n: u32| {
        let mut f = vec![0x1c];
        f.extend_from_slice(&stmt.to_le_bytes());
        f.extend_from_slice(&n.to_le_bytes());
        f
    };
    send(&mut s, &fetch(4)).await;
    let rows = until_eof(&mut s).await;
    assert_eq!(rows.len(), 5, "4 binary rows and EOF");
    send(&mut s, &fetch(100)).await;
    let rows = until_eof(&mut s).await;
    assert_eq!(rows.len(), 7, "6 rows and EOF");
    assert_ne!(status(rows.last().unwrap()) & 0x0080, 0, "last row sent");
    // COM_STMT_RESET (OK), COM_STMT_CLOSE (no answer), COM_PING (OK).
    let mut reset = vec![0x1a];
    reset.extend_from_slice(&stmt.to_le_bytes());
    send(&mut s, &reset).await;
    assert_eq!(packet(&mut s).await[0], 0x00);
    let mut close = vec![0x19];
    close.extend_from_slice(&stmt.to_le_bytes());
    send(&mut s, &close).await;
    send(&mut s, &[0x0e]).await;
    assert_eq!(
        packet(&mut s).await[0],
        0x00,
        "the PING answer, not a stray packet"
    );
    // COM_FIELD_LIST on a table of the target.
    send(&mut s, &[0x03]).await; // empty COM_QUERY: an ERR, and still in step
    assert_eq!(packet(&mut s).await[0], 0xff);
    let mut q = vec![0x03];
    q.extend_from_slice(b"CREATE TABLE IF NOT EXISTS fields_t (a INT, b TEXT)");
    send(&mut s, &q).await;
    assert_eq!(packet(&mut s).await[0], 0x00);
    let mut fl = vec![0x04];
    fl.extend_from_slice(b"fields_t\0");
    send(&mut s, &fl).await;
    let fields = until_eof(&mut s).await;
    assert_eq!(fields.len(), 3, "two column definitions and EOF");
    // COM_INIT_DB and COM_STATISTICS.
    let mut init = vec![0x02];
    init.extend_from_slice(b"app");
    send(&mut s, &init).await;
    assert_eq!(packet(&mut s).await[0], 0x00);
    send(&mut s, &[0x09]).await;
    let stats = packet(&mut s).await;
    assert!(String::from_utf8_lossy(&stats).contains("Uptime"));
    send(&mut s, &[0x0e]).await;
    assert_eq!(packet(&mut s).await[0], 0x00);
}

#[tokio::test]
async fn long_data_reaches_the_statement() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut s = raw_session(gw.mysql_port()).await;
    let mut prep = vec![0x16];
    prep.extend_from_slice(b"SELECT LENGTH(?), MD5(?)");
    send(&mut s, &prep).await;
    let ok = packet(&mut s).await;
    let stmt = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    until_eof(&mut s).await; // 2 parameter definitions + EOF
    until_eof(&mut s).await; // 2 column definitions + EOF
                             // Three chunks of long data for each parameter: no answer to these.
    for param in 0..2u16 {
        for chunk in [&b"abc"[..], &[b'x'; 70_000][..], b"end"] {
            let mut p = vec![0x18];
            p.extend_from_slice(&stmt.to_le_bytes());
            p.extend_from_slice(&param.to_le_bytes());
            p.extend_from_slice(chunk);
            send(&mut s, &p).await;
        }
    }
    // COM_STMT_EXECUTE: no cursor, 1 iteration, null bitmap, new-params-bound
    // with two BLOB (0xfc) types, no values (they came as long data).
    let mut exec = vec![0x17];
    exec.extend_from_slice(&stmt.to_le_bytes());
    exec.push(0x00);
    exec.extend_from_slice(&1u32.to_le_bytes());
    exec.push(0x00);
    exec.push(0x01);
    exec.extend_from_slice(&[0xfc, 0x00, 0xfc, 0x00]);
    send(&mut s, &exec).await;
    let result = until_eof(&mut s).await; // column count, 2 defs, EOF
    assert_eq!(result[0], vec![2]);
    let rows = until_eof(&mut s).await;
    assert_eq!(rows.len(), 2, "one binary row and EOF");
    // Binary row: header 0x00, null bitmap (1 byte), LENGTH() as a 4-byte
    // INT, then MD5() as a length-prefixed string.
    let row = &rows[0];
    let len = i32::from_le_bytes(row[2..6].try_into().unwrap());
    assert_eq!(len, 70_006);
    assert_eq!(row[6], 32, "an MD5 hex string follows");
}

#[tokio::test]
async fn a_malformed_packet_closes_only_its_connection() {
    use mysql_async::prelude::*;
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut healthy = mysql_async::Conn::new(
        mysql_async::Opts::from_url(&gw.mysql_url(
            "agent",
            crate::support::gateway::AGENT_PW,
            "app",
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    // A handshake response that is three bytes of nothing.
    let mut s = TcpStream::connect(("127.0.0.1", gw.mysql_port()))
        .await
        .unwrap();
    packet(&mut s).await; // the greeting
    s.write_all(&[3, 0, 0, 1, 0xde, 0xad, 0xbe]).await.unwrap();
    let err = packet(&mut s).await;
    assert_eq!(&err[..3], &[0xff, 0x13, 0x04], "ERR 1043 Bad handshake");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    // After login: a COM_QUERY that is cut off mid-packet, then EOF.
    let mut s = raw_session(gw.mysql_port()).await;
    s.write_all(&[100, 0, 0, 0, 0x03, b'S', b'E'])
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    // Everyone else is untouched.
    let one: Option<i64> = healthy.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

/// The one value of a one-row, one-column text result.
async fn value(s: &mut TcpStream, sql: &str) -> Vec<u8> {
    let mut q = vec![0x03];
    q.extend_from_slice(sql.as_bytes());
    send(s, &q).await;
    let count = packet(s).await;
    assert_eq!(count, [1], "{sql}: {count:?}");
    until_eof(s).await; // the column definition
    let rows = until_eof(s).await;
    let row = &rows[0];
    row[1..1 + row[0] as usize].to_vec()
}

#[tokio::test]
async fn the_next_client_of_a_pooled_connection_gets_its_own_options_and_no_debug() {
    let mut config = TestConfig::mysql(mariadb::shared());
    config.target_setting("pool_size = 1");
    let gw = config.start().await;

    // A client turns multi-statements on (its handshake had them off).
    let mut a = raw_session(gw.mysql_port()).await;
    let first = value(&mut a, "SELECT CONNECTION_ID()").await;
    send(&mut a, &[0x1b, 0x00, 0x00]).await; // MYSQL_OPTION_MULTI_STATEMENTS_ON
    let answer = packet(&mut a).await;
    assert!(matches!(answer[0], 0x00 | 0xfe), "{answer:?}");
    // COM_DEBUG is the gateway's to refuse; it never reaches the server.
    send(&mut a, &[0x0d]).await;
    let err = packet(&mut a).await;
    assert_eq!(err[0], 0xff);
    assert_eq!(u16::from_le_bytes([err[1], err[2]]), 1227);
    assert!(String::from_utf8_lossy(&err).contains("COM_DEBUG"));
    send(&mut a, &[0x01]).await; // COM_QUIT
    drop(a);

    // The next client of the same server connection has them off, as its
    // handshake says: a text of two statements is a syntax error.
    let mut b = raw_session(gw.mysql_port()).await;
    assert_eq!(
        value(&mut b, "SELECT CONNECTION_ID()").await,
        first,
        "the pool of one reuses the connection"
    );
    let mut q = vec![0x03];
    q.extend_from_slice(b"SELECT 1; SELECT 2");
    send(&mut b, &q).await;
    let answer = packet(&mut b).await;
    assert_eq!(answer[0], 0xff, "multi-statements must be off: {answer:?}");
    assert_eq!(u16::from_le_bytes([answer[1], answer[2]]), 1064);
}
