//! Transparency of the MySQL relay: what the server sends reaches the
//! client as it was sent, through the text and the binary protocol.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Value};

use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::mariadb;

async fn conn(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

async fn agent(gw: &crate::support::gateway::Gateway) -> Conn {
    conn(&gw.mysql_url("agent", AGENT_PW, "app")).await
}

/// A table of its own per test, so tests can share the server.
async fn table(c: &mut Conn, name: &str, columns: &str) {
    c.query_drop(format!("DROP TABLE IF EXISTS {name}"))
        .await
        .unwrap();
    c.query_drop(format!("CREATE TABLE {name} ({columns})"))
        .await
        .unwrap();
}

#[tokio::test]
async fn types_pass_through_text_and_binary_protocol() {
    let my = mariadb::shared();
    let gw = TestConfig::mysql(my).start().await;
    let mut c = agent(&gw).await;
    table(
        &mut c,
        "types_t",
        "id INT PRIMARY KEY, n INT NULL, s VARCHAR(50) CHARACTER SET utf8mb4, d DECIMAL(20,6), \
         t DATETIME(6), b BLOB, j JSON",
    )
    .await;
    let blob: Vec<u8> = (0..=255u8).collect();
    c.exec_drop(
        "INSERT INTO types_t VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            1,
            None::<i32>,
            "héllo 🐘🚀",
            "12345678901234.123456",
            "2024-02-29 23:59:58.123456",
            blob.clone(),
            r#"{"a": [1, 2, "three"]}"#,
        ),
    )
    .await
    .unwrap();
    let sql = "SELECT id, n, s, d, t, b, j FROM types_t";
    let text: Vec<mysql_async::Row> = c.query(sql).await.unwrap();
    let binary: Vec<mysql_async::Row> = c.exec(sql, ()).await.unwrap();
    let mut direct = conn(&my.direct_url()).await;
    let direct_text: Vec<mysql_async::Row> = direct.query(sql).await.unwrap();
    let direct_binary: Vec<mysql_async::Row> = direct.exec(sql, ()).await.unwrap();
    let values = |rows: &[mysql_async::Row]| -> Vec<Vec<Value>> {
        rows.iter().map(|r| r.clone().unwrap()).collect()
    };
    assert_eq!(values(&text), values(&direct_text));
    assert_eq!(values(&binary), values(&direct_binary));
    let row = &text[0];
    assert_eq!(row.get::<Option<i32>, _>(1).unwrap(), None);
    assert_eq!(row.get::<String, _>(2).unwrap(), "héllo 🐘🚀");
    assert_eq!(row.get::<String, _>(3).unwrap(), "12345678901234.123456");
    assert_eq!(row.get::<Vec<u8>, _>(5).unwrap(), blob);
    assert!(matches!(
        binary[0].as_ref(4),
        Some(Value::Date(2024, 2, 29, 23, 59, 58, 123456))
    ));
    // Column metadata equals a direct connection's, field by field.
    let meta = |rows: &[mysql_async::Row]| -> Vec<String> {
        rows[0]
            .columns_ref()
            .iter()
            .map(|c| {
                format!(
                    "{}|{}|{}|{}|{}|{}|{}|{:?}|{:?}|{}",
                    c.schema_str(),
                    c.table_str(),
                    c.org_table_str(),
                    c.name_str(),
                    c.org_name_str(),
                    c.character_set(),
                    c.column_length(),
                    c.column_type(),
                    c.flags(),
                    c.decimals()
                )
            })
            .collect()
    };
    assert_eq!(meta(&text), meta(&direct_text));
    assert_eq!(meta(&binary), meta(&direct_binary));
    assert!(
        meta(&text)[0].starts_with("app|types_t|types_t|id|id|"),
        "{:?}",
        meta(&text)
    );
}

#[tokio::test]
async fn duplicate_key_errors_keep_code_and_sqlstate() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut c = agent(&gw).await;
    table(&mut c, "dup_t", "id INT PRIMARY KEY").await;
    c.query_drop("INSERT INTO dup_t VALUES (1)").await.unwrap();
    let e = c
        .query_drop("INSERT INTO dup_t VALUES (1)")
        .await
        .unwrap_err();
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 1062);
            assert_eq!(s.state, "23000");
            assert!(s.message.contains("Duplicate entry '1'"), "{}", s.message);
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    // The session goes on.
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM dup_t").await.unwrap();
    assert_eq!(n, Some(1));
}

#[tokio::test]
async fn multi_statements_and_procedures_return_every_result() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut c = agent(&gw).await;
    let mut result = c
        .query_iter("SELECT 1 AS a; SELECT 'x', 'y'; DO 0; SELECT 3")
        .await
        .unwrap();
    let mut sets = Vec::new();
    while !result.is_empty() {
        let rows: Vec<mysql_async::Row> = result.collect().await.unwrap();
        sets.push(rows.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>());
    }
    drop(result);
    assert_eq!(sets.len(), 4, "{sets:?}");
    assert_eq!(sets[0], vec![vec![Value::Bytes(b"1".to_vec())]]);
    assert_eq!(
        sets[1],
        vec![vec![
            Value::Bytes(b"x".to_vec()),
            Value::Bytes(b"y".to_vec())
        ]]
    );
    assert!(sets[2].is_empty());
    c.query_drop("DROP PROCEDURE IF EXISTS two_sets")
        .await
        .unwrap();
    c.query_drop(
        "CREATE PROCEDURE two_sets() BEGIN SELECT 1 AS first; SELECT 2 AS second, 'b'; END",
    )
    .await
    .unwrap();
    let mut result = c.query_iter("CALL two_sets()").await.unwrap();
    let first: Vec<(i64,)> = result.collect().await.unwrap();
    let second: Vec<(i64, String)> = result.collect().await.unwrap();
    drop(result);
    assert_eq!(first, vec![(1,)]);
    assert_eq!(second, vec![(2, "b".to_owned())]);
    // And as a prepared statement (binary protocol).
    let mut result = c.exec_iter("CALL two_sets()", ()).await.unwrap();
    let first: Vec<(i64,)> = result.collect().await.unwrap();
    let second: Vec<(i64, String)> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((first.len(), second.len()), (1, 1));
    let one: Option<i64> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
}

#[tokio::test]
async fn a_million_rows_and_a_20_mib_value_arrive_whole() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let mut c = agent(&gw).await;
    // MariaDB's sequence engine: the numbers 1 to 1,000,000.
    let sql = "SELECT seq AS n, MD5(seq) FROM seq_1_to_1000000";
    let expected: Option<(i64, String)> = c
        .query_first(format!(
            "SELECT SUM(n), SUM(CAST(CONV(SUBSTR(MD5(n), 1, 8), 16, 10) AS UNSIGNED)) FROM ({sql}) x"
        ))
        .await
        .unwrap();
    let (sum, digest) = expected.unwrap();
    let mut rows = c.query_iter(sql).await.unwrap();
    let (mut count, mut s, mut d) = (0i64, 0i64, 0u64);
    rows.for_each(|row| {
        let (n, md5): (i64, String) = mysql_async::from_row(row);
        count += 1;
        s += n;
        d += u64::from_str_radix(&md5[..8], 16).unwrap();
    })
    .await
    .unwrap();
    drop(rows);
    assert_eq!((count, s, d.to_string()), (1_000_000, sum, digest));
    // 20 MiB, more than one 16 MiB packet each way, text and binary.
    table(&mut c, "big_t", "id INT PRIMARY KEY, v LONGBLOB").await;
    let big: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 251) as u8).collect();
    c.exec_drop("INSERT INTO big_t VALUES (1, ?)", (big.clone(),))
        .await
        .unwrap();
    let back: Option<Vec<u8>> = c
        .query_first("SELECT v FROM big_t WHERE id = 1")
        .await
        .unwrap();
    assert!(
        back.as_deref() == Some(&big[..]),
        "text protocol round trip"
    );
    let back: Option<Vec<u8>> = c
        .exec_first("SELECT v FROM big_t WHERE id = ?", (1,))
        .await
        .unwrap();
    assert!(
        back.as_deref() == Some(&big[..]),
        "binary protocol round trip"
    );
}

#[tokio::test]
async fn wrong_password_unknown_database_and_unknown_command_are_errors() {
    let gw = TestConfig::mysql(mariadb::shared()).start().await;
    let server_error = |e: mysql_async::Error| match e {
        mysql_async::Error::Server(s) => (s.code, s.state, s.message),
        other => panic!("expected a server error, got {other:?}"),
    };
    let e = Conn::new(Opts::from_url(&gw.mysql_url("agent", "wrong", "app")).unwrap())
        .await
        .unwrap_err();
    let (code, state, message) = server_error(e);
    assert_eq!((code, state.as_str()), (1045, "28000"));
    assert!(
        message.starts_with("Access denied for user 'agent'"),
        "{message}"
    );
    let e = Conn::new(Opts::from_url(&gw.mysql_url("nobody", "x", "app")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(server_error(e).0, 1045);
    let e = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "nope")).unwrap())
        .await
        .unwrap_err();
    let (code, state, message) = server_error(e);
    assert_eq!((code, state.as_str()), (1049, "42000"));
    assert!(
        message.contains("Unknown database 'nope'") && message.contains("app"),
        "{message}"
    );
    // No database: the user's only target.
    let mut c = conn(&format!(
        "mysql://agent:{AGENT_PW}@127.0.0.1:{}",
        gw.mysql_port()
    ))
    .await;
    let db: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("app"));
    // An unknown command gets ERR 1047 and never reaches the server.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    drop(c);
    let mut raw = raw_session(gw.mysql_port()).await;
    raw.write_all(&[1, 0, 0, 0, 0x30]).await.unwrap();
    let mut hdr = [0u8; 4];
    raw.read_exact(&mut hdr).await.unwrap();
    let mut body = vec![0u8; hdr[0] as usize | (hdr[1] as usize) << 8];
    raw.read_exact(&mut body).await.unwrap();
    assert_eq!(&body[..3], &[0xff, 0x17, 0x04], "ERR 1047");
    assert_eq!(&body[3..9], b"#08S01");
}

/// A logged-in raw socket (mysql_native_password, classic EOF packets), for
/// bytes no driver sends.
pub async fn raw_session(port: u16) -> tokio::net::TcpStream {
    raw_login(port, "agent", AGENT_PW, "app").await
}

/// Reads packets until one holds `marker`; the payloads read.
pub async fn until(s: &mut tokio::net::TcpStream, marker: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    loop {
        let mut hdr = [0u8; 4];
        tokio::io::AsyncReadExt::read_exact(s, &mut hdr)
            .await
            .expect("a packet");
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], 0]) as usize;
        let mut p = vec![0u8; len];
        tokio::io::AsyncReadExt::read_exact(s, &mut p)
            .await
            .expect("a payload");
        let done = p.windows(marker.len()).any(|w| w == marker);
        packets.push(p);
        if done {
            return packets;
        }
    }
}

/// A raw connection logged in as `user` (mysql_native_password) to `db`.
pub async fn raw_login(port: u16, user: &str, password: &str, db: &str) -> tokio::net::TcpStream {
    use mysql_common::auth::plugins::mysql_native_password::scramble_native;
    use mysql_common::proto::MyDeserialize;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await.unwrap();
    let mut greeting = vec![0u8; hdr[0] as usize | (hdr[1] as usize) << 8];
    s.read_exact(&mut greeting).await.unwrap();
    let hs = mysql_common::packets::HandshakePacket::deserialize(
        (),
        &mut mysql_common::io::ParseBuf(&greeting),
    )
    .unwrap();
    let mut nonce = hs.scramble_1_ref().to_vec();
    nonce.extend_from_slice(&hs.scramble_2_ref().unwrap()[..12]);
    let token = scramble_native(&nonce, password.as_bytes()).unwrap();
    // PROTOCOL_41, SECURE_CONNECTION, PLUGIN_AUTH, CONNECT_WITH_DB,
    // MULTI_RESULTS (procedures may return result sets).
    let caps: u32 = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0000_0008 | 0x0002_0000;
    let mut p = Vec::new();
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&(16u32 << 20).to_le_bytes());
    p.push(45);
    p.extend_from_slice(&[0; 23]);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    p.push(20);
    p.extend_from_slice(&token);
    p.extend_from_slice(db.as_bytes());
    p.extend_from_slice(b"\0mysql_native_password\0");
    let mut out = Vec::new();
    sqlgate_mysql::packet::encode(1, &p, &mut out);
    s.write_all(&out).await.unwrap();
    s.read_exact(&mut hdr).await.unwrap();
    let mut ok = vec![0u8; hdr[0] as usize];
    s.read_exact(&mut ok).await.unwrap();
    assert_eq!(ok[0], 0, "login OK");
    s
}

#[tokio::test]
async fn ok_packets_keep_affected_rows_insert_ids_warnings_and_info() {
    let my = mariadb::shared();
    let gw = TestConfig::mysql(my).start().await;
    let mut direct = conn(&my.direct_url()).await;
    let mut via = agent(&gw).await;
    let mut seen = Vec::new();
    for (c, name) in [(&mut direct, "ok_direct_t"), (&mut via, "ok_via_t")] {
        table(c, name, "id INT AUTO_INCREMENT PRIMARY KEY, v TINYINT").await;
        c.query_drop(format!("INSERT INTO {name} (v) VALUES (1), (2), (3)"))
            .await
            .unwrap();
        let inserted = (c.affected_rows(), c.last_insert_id(), c.info().to_string());
        // 300 does not fit a TINYINT: clamped with a warning (non-strict mode).
        c.query_drop("SET SESSION sql_mode = ''").await.unwrap();
        c.query_drop(format!("UPDATE {name} SET v = 300 WHERE id > 1"))
            .await
            .unwrap();
        let updated = (c.affected_rows(), c.get_warnings(), c.info().to_string());
        seen.push((inserted, updated));
    }
    assert_eq!(
        seen[0], seen[1],
        "the same OK packets direct and through the gateway"
    );
    let ((rows, id, info), (changed, warnings, _)) = &seen[1];
    assert_eq!((*rows, *id), (3, Some(1)));
    assert!(info.contains("Records: 3"), "{info}");
    assert_eq!((*changed, *warnings), (2, 2));
}
