//! Live sessions on the admin API: an operator lists the sessions open
//! now and ends one; the client learns why (FATAL 57P01 naming the
//! operator), and the session leaves the list.

use crate::support::approvals::{self, api, end_the_live_session, live_sessions};
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::pg;

/// A raw-protocol session of the agent through `gw`.
async fn raw_agent(gw: &crate::support::gateway::Gateway) -> crate::support::raw::RawClient {
    crate::support::raw::RawClient::connect(
        gw.addr(),
        &[("user", "agent"), ("database", "app")],
        AGENT_PW,
    )
    .await
    .unwrap()
    .0
}

/// Every message the session sends until it closes, one `tag:body` line
/// each.
async fn read_to_end(raw: &mut crate::support::raw::RawClient) -> String {
    let mut seen = String::new();
    while let Some((tag, body)) = raw.read().await {
        seen.push_str(&format!(
            "{}:{}\n",
            tag as char,
            String::from_utf8_lossy(&body)
        ));
    }
    seen
}

/// Parse, Bind and Execute of `sql` (unnamed, no parameters), ended by a
/// Flush: an extended-protocol batch without its Sync.
fn flushed_batch(sql: &str) -> bytes::BytesMut {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    let mut out = BytesMut::new();
    frontend::parse("", sql, std::iter::empty(), &mut out).unwrap();
    frontend::bind(
        "",
        "",
        std::iter::empty::<i16>(),
        std::iter::empty::<Option<&[u8]>>(),
        |_: Option<&[u8]>,
         _: &mut BytesMut|
         -> Result<postgres_protocol::IsNull, Box<dyn std::error::Error + Sync + Send>> {
            Ok(postgres_protocol::IsNull::No)
        },
        std::iter::empty::<i16>(),
        &mut out,
    )
    .map_err(|_| ())
    .unwrap();
    frontend::execute("", 0, &mut out).unwrap();
    frontend::flush(&mut out);
    out
}

#[tokio::test]
async fn an_operator_lists_and_ends_a_live_session() {
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let (client, connection) = tokio_postgres::connect(
        &gw.conn_str("agent", AGENT_PW, "app"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();

    // Without a token: refused.
    assert_eq!(
        api(&gw, "GET", "/api/sessions/live", None, None).await.0,
        401
    );
    let live = live_sessions(&gw).await;
    let sessions = live.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{live}");
    assert_eq!(sessions[0]["protocol"], "postgres");
    assert_eq!(sessions[0]["user"], "agent");
    assert_eq!(sessions[0]["target"], "app");
    let id = sessions[0]["id"].as_u64().unwrap();
    // /metrics counts it, and how its statement was classified.
    let metrics = approvals::metrics(&gw).await;
    assert!(
        metrics.contains("sqlgate_sessions_open{protocol=\"postgres\",target=\"app\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sqlgate_statement_texts_total{by=\"classified\"} "),
        "{metrics}"
    );
    // The CLI shows the same.
    let url = format!("http://{}", gw.running.admin_addr.unwrap());
    let listed = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .args(["sessions", "live", "--admin-url", &url])
            .env("SQLGATE_ADMIN_TOKEN", approvals::token("carol"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("postgres") && listed.contains(&id.to_string()) && listed.contains("agent"),
        "{listed}"
    );

    let end = |id: u64| {
        let gw = &gw;
        async move {
            api(
                gw,
                "POST",
                &format!("/api/sessions/live/postgres/{id}/end"),
                Some(approvals::token("carol")),
                Some(serde_json::json!({})),
            )
            .await
            .0
        }
    };
    assert_eq!(end(id + 1).await, 404, "no such session");
    assert_eq!(end(id).await, 200);
    // Idle, it ends at once: the connection reports the FATAL.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), connection)
        .await
        .expect("the session ends at once")
        .unwrap()
        .expect_err("the session was ended");
    let db = ended.as_db_error().expect("a FATAL from the gateway");
    assert_eq!(db.code().code(), "57P01");
    assert!(
        db.message().contains("ended by a sqlgate operator"),
        "{db:?}"
    );
    assert!(client.simple_query("SELECT 1").await.is_err());
    assert_eq!(live_sessions(&gw).await, serde_json::json!([]));
    // The recording says why it ended.
    let rec = gw.running.recorder.clone().unwrap();
    tokio::task::spawn_blocking(move || rec.flush())
        .await
        .unwrap();
    let store = cfg.path().join(sqlgate::store::config::DEFAULT_FILE);
    let mut s = sqlgate::store::sqlite::SqliteStore::open(&store).unwrap();
    use sqlgate::store::Store;
    let mut reasons = Vec::new();
    for sid in s.session_ids().unwrap() {
        for e in sqlgate::store::events(&s.rows(&sid).unwrap()) {
            if e.kind == sqlgate::store::Kind::SessionEnd {
                let end: sqlgate::store::SessionEnd = serde_json::from_str(&e.body).unwrap();
                reasons.push(end.reason);
            }
        }
    }
    assert_eq!(reasons, ["ended by an operator"]);
}

/// Recorded sessions over the API: listed (filtered by user), and one's
/// events with the statement as the client sent it; an unknown id is 404.
#[tokio::test]
async fn recorded_sessions_are_listed_and_shown_over_the_api() {
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let agent = crate::support::gateway::connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    agent.simple_query("SELECT 41 + 1").await.unwrap();
    // The statement was recorded before it ran: once the writer has
    // committed what it holds, the session and the statement are there.
    let rec = gw.running.recorder.clone().unwrap();
    tokio::task::spawn_blocking(move || rec.flush())
        .await
        .unwrap();
    let token = Some(approvals::token("carol"));
    let (status, list) = api(&gw, "GET", "/api/sessions?user=agent", token, None).await;
    assert_eq!(status, 200, "{list}");
    let sessions = list.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["target"], "app");
    assert!(sessions[0]["statements"].as_u64() >= Some(1), "{list}");
    let id = sessions[0]["id"].as_str().unwrap().to_owned();
    let (_, none) = api(&gw, "GET", "/api/sessions?user=nobody", token, None).await;
    assert_eq!(none, serde_json::json!([]));
    let (status, events) = api(&gw, "GET", &format!("/api/sessions/{id}"), token, None).await;
    assert_eq!(status, 200);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "statement" && e["event"]["text"] == "SELECT 41 + 1"),
        "{events}"
    );
    assert_eq!(
        api(&gw, "GET", "/api/sessions/0123", token, None).await.0,
        404
    );
    assert_eq!(api(&gw, "GET", "/api/sessions", None, None).await.0, 401);
}

/// An ended session runs nothing its client sends after the end, even a
/// client that pipelines batches ended by Flush (never Sync) so that the
/// session is never idle: the running statement completes, the next batch
/// never reaches the server.
#[tokio::test]
async fn an_ended_session_runs_nothing_a_pipelining_client_sends_after_the_end() {
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let mut raw = raw_agent(&gw).await;
    raw.send(&flushed_batch("SELECT 'before the end' FROM pg_sleep(1)"))
        .await;
    assert_eq!(end_the_live_session(&gw, "postgres").await, 200);
    // While the first batch still runs, the next one.
    raw.send(&flushed_batch("SELECT 'after the end'")).await;
    let text = read_to_end(&mut raw).await;
    assert!(text.contains("before the end"), "{text}");
    assert!(!text.contains("after the end"), "ran after the end: {text}");
    assert!(text.contains("57P01"), "{text}");
}

/// With `[admin] operators`, only those groups' tokens end sessions.
#[tokio::test]
async fn only_operators_end_sessions_when_operators_are_named() {
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    cfg.section("admin", "operators = [\"dba\"]");
    let gw = cfg.start().await;
    let _agent = crate::support::gateway::connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let live = live_sessions(&gw).await;
    let id = live[0]["id"].as_u64().unwrap();
    let path = format!("/api/sessions/live/postgres/{id}/end");
    let (status, body) = api(
        &gw,
        "POST",
        &path,
        Some(approvals::token("carol")),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("operators: dba"), "{body}");
    assert_eq!(
        live_sessions(&gw).await.as_array().unwrap().len(),
        1,
        "still open"
    );
    let (status, _) = api(
        &gw,
        "POST",
        &path,
        Some(approvals::token("alice")),
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200);
}

/// A session ended while its extended-protocol batch is open (its
/// Execute answered, no Sync yet) leaves its server connection in an
/// implicit transaction: that connection is closed, never handed to the
/// next session (a reset's Sync would commit half a pipeline).
#[tokio::test]
async fn a_session_ended_mid_batch_is_not_reused() {
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    // One server connection: the next session gets it again if it is
    // handed back.
    cfg.target_setting("pool_size = 1");
    let gw = cfg.start().await;
    let mut raw = raw_agent(&gw).await;
    raw.send(&flushed_batch("SELECT pg_backend_pid()::text"))
        .await;
    let mut first_pid = None;
    while let Some((tag, body)) = raw.read().await {
        if tag == b'D' {
            // Field count (2), length (4), the value.
            first_pid = Some(String::from_utf8_lossy(&body[6..]).into_owned());
        }
        if tag == b'C' {
            break;
        }
    }
    let first_pid = first_pid.expect("the batch's row");
    assert_eq!(end_the_live_session(&gw, "postgres").await, 200);
    let rest = read_to_end(&mut raw).await;
    assert!(rest.contains("57P01"), "{rest}");
    let next = crate::support::gateway::connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let rows = next
        .simple_query("SELECT pg_backend_pid()::text")
        .await
        .unwrap();
    let next_pid = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap();
    assert_ne!(
        next_pid, first_pid,
        "the ended session's connection was reused"
    );
}

/// A statement held for approval, with the session's earlier request
/// still running when an operator ends the session, never runs even
/// when it is approved afterwards: the relay checks again, once the wait
/// is over, that the session is not ending.
#[tokio::test]
async fn a_held_statement_approved_after_the_end_never_runs() {
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    let server = pg::shared();
    let direct = approvals::table(server, "live_held").await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS live_held_block; CREATE TABLE live_held_block (x int); \
             GRANT ALL ON live_held_block TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    // The first request waits on this lock until the test lets it go.
    let blocker = crate::support::gateway::connect(&server.direct_conn_str("app")).await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE live_held_block IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut raw = raw_agent(&gw).await;
    let mut out = BytesMut::new();
    frontend::query("SELECT count(*) FROM live_held_block", &mut out).unwrap();
    frontend::query("DELETE FROM live_held", &mut out).unwrap();
    raw.send(&out).await;
    let id = approvals::pending(&gw).await;
    assert_eq!(end_the_live_session(&gw, "postgres").await, 200);
    // The session is ending but its first request still runs: the held
    // DELETE is approved now.
    let (status, body) = approvals::approve(&gw, id, "alice").await;
    assert_eq!(status, 200, "{body}");
    blocker.batch_execute("COMMIT").await.unwrap();
    let seen = read_to_end(&mut raw).await;
    assert!(seen.contains("57P01"), "{seen}");
    assert!(!seen.contains("C:DELETE"), "{seen}");
    let left = direct
        .query_one("SELECT count(*) FROM live_held", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(left, 3, "the DELETE ran after the end:\n{seen}");
}
