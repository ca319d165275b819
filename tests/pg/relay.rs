//! Transparency of the relay: every part of the protocol reaches the client
//! as the server sent it.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, TryStreamExt};
use tokio_postgres::{AsyncMessage, SimpleQueryMessage};

use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::pg;
use crate::support::raw::{error_field, param_status, RawClient};

fn rows_of(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_and_multi_statement_queries() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = gw.agent().await;
    let msgs = c
        .simple_query("SELECT 1 AS a; SELECT 'two', NULL; SELECT current_database()")
        .await
        .unwrap();
    assert_eq!(
        rows_of(&msgs),
        vec![
            vec![Some("1".into())],
            vec![Some("two".into()), None],
            vec![Some("app".into())]
        ]
    );
    let completes = msgs
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .count();
    assert_eq!(completes, 3);
    // An empty query and a comment-only one are answered like the server does.
    assert!(rows_of(&c.simple_query("").await.unwrap()).is_empty());
    assert!(rows_of(&c.simple_query("-- nothing").await.unwrap()).is_empty());
}

#[tokio::test]
async fn extended_protocol_binary_parameters_and_results() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = gw.agent().await;
    let stmt = c
        .prepare("SELECT $1::int4, $2::int8, $3::float8, $4::text, $5::bytea, $6::bool, $7::int4")
        .await
        .unwrap();
    let blob: Vec<u8> = (0..=255u8).collect();
    let row = c
        .query_one(
            &stmt,
            &[
                &-7i32,
                &(1i64 << 40),
                &1.5f64,
                &"héllo 🐘",
                &blob,
                &true,
                &None::<i32>,
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), -7);
    assert_eq!(row.get::<_, i64>(1), 1 << 40);
    assert_eq!(row.get::<_, f64>(2), 1.5);
    assert_eq!(row.get::<_, &str>(3), "héllo 🐘");
    assert_eq!(row.get::<_, Vec<u8>>(4), blob);
    assert!(row.get::<_, bool>(5));
    assert_eq!(row.get::<_, Option<i32>>(6), None);
    // The same named statement again, then an unnamed one.
    assert_eq!(
        c.query(
            &stmt,
            &[
                &1i32,
                &2i64,
                &0.0f64,
                &"",
                &Vec::<u8>::new(),
                &false,
                &Some(3i32)
            ]
        )
        .await
        .unwrap()
        .len(),
        1
    );
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM generate_series(1, $1::int)",
            &[&42i32],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 42);
}

#[tokio::test]
async fn suspended_portals_and_pipelining() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let mut c = gw.agent().await;
    let tx = c.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT g FROM generate_series(1, 25) g")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 10).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(rows.len() <= 10);
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    tx.commit().await.unwrap();
    // Several requests in flight at once on one connection.
    let s1 = c.prepare("SELECT $1::int + 1").await.unwrap();
    let values: Vec<i32> = (0..20).collect();
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        values.iter().map(|v| [v as _]).collect();
    let results = futures_util::future::try_join_all(params.iter().map(|p| c.query_one(&s1, p)))
        .await
        .unwrap();
    let got: Vec<i32> = results.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, (1..=20).collect::<Vec<_>>());
}

async fn copy_round_trip(c: &tokio_postgres::Client, table: &str, format: &str, data: &[u8]) {
    let sink = c
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN {format}"))
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    // In uneven pieces, so that CopyData boundaries do not line up with rows.
    for chunk in data.chunks(7) {
        sink.send(bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 3, "{format}");
    let out: Vec<bytes::Bytes> = c
        .copy_out(&format!("COPY {table} TO STDOUT {format}"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(out.concat(), data, "{format} round trip is byte-exact");
}

#[tokio::test]
async fn copy_round_trips_are_byte_exact() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = gw.agent().await;
    c.batch_execute("CREATE TEMP TABLE copy_t (id int, name text, note text)")
        .await
        .unwrap();
    let text = b"1\tal\\tpha\t\\N\n2\tb\xc3\xa9ta\tx\n3\t\t\xf0\x9f\x90\x98\n";
    copy_round_trip(&c, "copy_t", "", text).await;
    c.batch_execute("TRUNCATE copy_t").await.unwrap();
    let csv = b"1,\"a,b\",\n2,\"quote \"\"x\"\"\",y\n3,,\"\"\n";
    copy_round_trip(&c, "copy_t", "(FORMAT csv)", csv).await;
    // Binary: take what the server produces and send it back.
    let binary: Vec<bytes::Bytes> = c
        .copy_out("COPY copy_t TO STDOUT (FORMAT binary)")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let binary = binary.concat();
    c.batch_execute("TRUNCATE copy_t").await.unwrap();
    copy_round_trip(&c, "copy_t", "(FORMAT binary)", &binary).await;
}

#[tokio::test]
async fn copy_errors_and_client_abort_leave_the_session_usable() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = gw.agent().await;
    c.batch_execute("CREATE TEMP TABLE copy_e (id int)")
        .await
        .unwrap();
    // Bad data mid-copy: the server's error reaches the client.
    let sink = c
        .copy_in::<_, bytes::Bytes>("COPY copy_e FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\nnot-a-number\n3\n"))
        .await
        .unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22P02");
    // The client gives up mid-copy (tokio-postgres sends CopyFail).
    {
        let sink = c
            .copy_in::<_, bytes::Bytes>("COPY copy_e FROM STDIN")
            .await
            .unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"1\n")).await.unwrap();
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM copy_e", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn notify_reaches_an_idle_listener_and_notices_pass() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let (listener, mut conn) = tokio_postgres::connect(
        &gw.conn_str("agent", AGENT_PW, "app"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if tx.send(m).is_err() {
                break;
            }
        }
    });
    listener
        .batch_execute("LISTEN sqlgate_test_channel")
        .await
        .unwrap();
    // The listener is idle now; another session notifies.
    let other = gw.agent().await;
    other
        .batch_execute("NOTIFY sqlgate_test_channel, 'hello from the other side'")
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("notification within 5 s")
        .expect("a message");
    match msg {
        AsyncMessage::Notification(n) => {
            assert_eq!(n.channel(), "sqlgate_test_channel");
            assert_eq!(n.payload(), "hello from the other side");
        }
        other => panic!("expected a notification, got {other:?}"),
    }
    listener
        .batch_execute("DO $$ BEGIN RAISE NOTICE 'careful: %', 42 USING HINT = 'a hint'; END $$")
        .await
        .unwrap();
    match rx.recv().await.unwrap() {
        AsyncMessage::Notice(n) => {
            assert_eq!(n.message(), "careful: 42");
            assert_eq!(n.hint(), Some("a hint"));
        }
        other => panic!("expected a notice, got {other:?}"),
    }
}

#[tokio::test]
async fn error_responses_keep_every_field() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = gw.agent().await;
    c.batch_execute("CREATE TEMP TABLE uniq (id int CONSTRAINT uniq_pk PRIMARY KEY)")
        .await
        .unwrap();
    c.execute("INSERT INTO uniq VALUES (1)", &[]).await.unwrap();
    let e = c
        .execute("INSERT INTO uniq VALUES (1)", &[])
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "23505");
    assert_eq!(db.constraint(), Some("uniq_pk"));
    assert_eq!(db.table(), Some("uniq"));
    assert_eq!(db.detail(), Some("Key (id)=(1) already exists."));
    let e = c.simple_query("SELECT 1/0").await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "22012");
    assert_eq!(e.as_db_error().unwrap().message(), "division by zero");
    let e = c
        .simple_query("SELECT * FROM no_such_table_here")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42P01");
    assert_eq!(
        db.position(),
        Some(&tokio_postgres::error::ErrorPosition::Original(15))
    );
    // The session goes on after errors, also inside a failed transaction.
    c.batch_execute("BEGIN").await.unwrap();
    assert!(c.batch_execute("SELECT 1/0").await.is_err());
    let e = c.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(e.as_db_error().unwrap().code().code(), "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        rows_of(&c.simple_query("SELECT 5").await.unwrap()),
        vec![vec![Some("5".into())]]
    );
}

#[tokio::test]
async fn cancel_lands_within_two_seconds() {
    let pg = pg::shared();
    let gw = TestConfig::new(pg).start().await;
    let c = gw.agent().await;
    let token = c.cancel_token();
    let marker = format!("cancel-me-{}", std::process::id());
    let sql = format!("SELECT pg_sleep(30) /* {marker} */");
    let running = tokio::spawn(async move { c.simple_query(&sql).await });
    // Wait until the server runs the statement (a condition, not a guess).
    pg.wait_for_backend("state = 'active'", &marker).await;
    let started = Instant::now();
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the cancel lands within 2 s")
        .unwrap();
    assert_eq!(result.unwrap_err().code().unwrap().code(), "57014");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_million_rows_arrive_complete() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = gw.agent().await;
    let sql = "SELECT g, md5(g::text) FROM generate_series(1, 1000000) g";
    let expected = c
        .query_one(
            "SELECT count(*), sum(g)::int8, sum(('x' || substr(md5(g::text), 1, 8))::bit(32)::int8)::int8 FROM generate_series(1, 1000000) g",
            &[],
        )
        .await
        .unwrap();
    let rows = c.query_raw(sql, std::iter::empty::<i32>()).await.unwrap();
    futures_util::pin_mut!(rows);
    let (mut count, mut sum, mut digest) = (0i64, 0i64, 0i64);
    while let Some(row) = rows.try_next().await.unwrap() {
        count += 1;
        sum += row.get::<_, i32>(0) as i64;
        let md5: &str = row.get(1);
        digest += i64::from_str_radix(&md5[..8], 16).unwrap();
    }
    assert_eq!(count, expected.get::<_, i64>(0));
    assert_eq!(sum, expected.get::<_, i64>(1));
    assert_eq!(digest, expected.get::<_, i64>(2));
}

#[tokio::test]
async fn greeting_hides_the_server_side_user_and_shows_its_pid() {
    let pg = pg::shared();
    let gw = TestConfig::new(pg).start().await;
    let (mut c, greeting) = RawClient::connect(
        gw.addr(),
        &[
            ("user", "agent"),
            ("database", "app"),
            ("application_name", "raw-test"),
        ],
        AGENT_PW,
    )
    .await
    .unwrap();
    let params: Vec<(String, String)> = greeting
        .iter()
        .filter(|(t, _)| *t == b'S')
        .map(|(_, b)| param_status(b))
        .collect();
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("session_authorization").as_deref(), Some("agent"));
    assert_eq!(get("application_name").as_deref(), Some("raw-test"));
    assert!(get("server_version").unwrap().starts_with(char::is_numeric));
    assert!(!params.iter().any(|(_, v)| v.contains("app_owner")));
    let key = greeting
        .iter()
        .find(|(t, _)| *t == b'K')
        .expect("BackendKeyData");
    let pid = i32::from_be_bytes(key.1[..4].try_into().unwrap());
    let msgs = c.query("SELECT pg_backend_pid()").await;
    let row = msgs.iter().find(|(t, _)| *t == b'D').unwrap();
    let server_pid: i32 = std::str::from_utf8(&row.1[6..]).unwrap().parse().unwrap();
    // The server connection's pid (what the session's own queries see);
    // the secret beside it is the gateway's (cancel.rs).
    assert_eq!(
        pid, server_pid,
        "the client sees its server connection's pid"
    );
    // A ParameterStatus after SET passes through; session_authorization
    // changes stay hidden too.
    let msgs = c.query("SET application_name = 'renamed'").await;
    assert!(msgs.iter().any(
        |(t, b)| *t == b'S' && param_status(b) == ("application_name".into(), "renamed".into())
    ));
}

#[tokio::test]
async fn a_malformed_message_closes_only_its_connection() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let healthy = gw.agent().await;
    let (mut bad, _) = RawClient::connect(
        gw.addr(),
        &[("user", "agent"), ("database", "app")],
        AGENT_PW,
    )
    .await
    .unwrap();
    // A Query whose length field is below the minimum of 4.
    bad.send(&[b'Q', 0, 0, 0, 2]).await;
    let (tag, body) = bad.read().await.expect("an error before the close");
    assert_eq!(tag, b'E');
    assert_eq!(error_field(&body, b'C').as_deref(), Some("08P01"));
    assert_eq!(error_field(&body, b'S').as_deref(), Some("FATAL"));
    assert!(bad.read().await.is_none(), "connection closed");
    // A Parse without its terminators, on another connection.
    let (mut bad2, _) = RawClient::connect(
        gw.addr(),
        &[("user", "agent"), ("database", "app")],
        AGENT_PW,
    )
    .await
    .unwrap();
    bad2.send(&[b'P', 0, 0, 0, 7, b's', b'e', b'l']).await;
    let (tag, body) = bad2.read().await.unwrap();
    assert_eq!(
        (tag, error_field(&body, b'C').as_deref()),
        (b'E', Some("08P01"))
    );
    // Garbage before authentication.
    let mut raw = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut raw, &[0, 0, 0, 3, 1, 2, 3])
        .await
        .unwrap();
    let mut sink = Vec::new();
    // The gateway closes it (a reset, since our garbage was never read).
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut sink).await;
    // Everyone else is untouched.
    assert_eq!(
        rows_of(&healthy.simple_query("SELECT 7").await.unwrap()),
        vec![vec![Some("7".into())]]
    );
}

/// The BackendKeyData pid is the server connection's own: what
/// `pg_backend_pid()` and notifications say, what `pg_terminate_backend`
/// takes (the session then ends with 57P01); a cancel with the gateway's
/// secret still reaches it, one with another secret does not.
#[tokio::test]
async fn the_client_sees_its_server_connections_pid() {
    let pg = pg::shared();
    let gw = TestConfig::new(pg).start().await;
    let (mut c, greeting) = RawClient::connect(
        gw.addr(),
        &[("user", "agent"), ("database", "app")],
        AGENT_PW,
    )
    .await
    .unwrap();
    let key = greeting
        .iter()
        .find(|m| m.0 == b'K')
        .expect("BackendKeyData")
        .1
        .clone();
    let pid = i32::from_be_bytes(key[..4].try_into().unwrap());
    let secret = key[4..8].to_vec();
    let first_value = |msgs: &[crate::support::raw::Msg]| -> String {
        let row = &msgs.iter().find(|m| m.0 == b'D').expect("a row").1;
        let len = i32::from_be_bytes(row[2..6].try_into().unwrap()) as usize;
        String::from_utf8(row[6..6 + len].to_vec()).unwrap()
    };
    let got = c.query("SELECT pg_backend_pid()").await;
    assert_eq!(first_value(&got), pid.to_string());
    // A notification to itself carries the same pid.
    let got = c
        .query("LISTEN sqlgate_pid; NOTIFY sqlgate_pid, 'hi'")
        .await;
    let note = &got.iter().find(|m| m.0 == b'A').expect("a notification").1;
    assert_eq!(i32::from_be_bytes(note[..4].try_into().unwrap()), pid);
    // A cancel with another secret is not forwarded; with the gateway's
    // it is.
    let marker = format!("pid-cancel-{}", std::process::id());
    let mut sql = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query(
        &format!("SELECT pg_sleep(30) /* {marker} */"),
        &mut sql,
    )
    .unwrap();
    c.send(&sql).await;
    pg.wait_for_backend("state = 'active'", &marker).await;
    let addr = gw.addr();
    let cancel = |secret: Vec<u8>| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut m = Vec::new();
        m.extend_from_slice(&16i32.to_be_bytes());
        m.extend_from_slice(&80877102i32.to_be_bytes());
        m.extend_from_slice(&pid.to_be_bytes());
        m.extend_from_slice(&secret);
        tokio::io::AsyncWriteExt::write_all(&mut s, &m)
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut rest).await;
    };
    cancel(vec![0, 0, 0, 0]).await;
    pg.wait_for_backend("state = 'active'", &marker).await;
    cancel(secret).await;
    let got = c.until_ready().await;
    let err = &got.iter().find(|m| m.0 == b'E').expect("cancelled").1;
    assert_eq!(error_field(err, b'C').as_deref(), Some("57014"));
    // Terminated by its pid from another session: 57P01.
    let other = gw.agent().await;
    other
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let got = c.query("SELECT 1").await;
    let err = &got.iter().find(|m| m.0 == b'E').expect("terminated").1;
    assert_eq!(error_field(err, b'C').as_deref(), Some("57P01"));
}
