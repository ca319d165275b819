//! Approvals in tests: a gateway whose policy reviews writes, tokens of
//! the admin API for a few people, and the API spoken over a real socket.

use super::gateway::{Gateway, TestConfig};

/// Tokens of the admin API: `alice` and `dave` approve (group `dba`),
/// `agent` (the requester) is in `dba` too (four eyes must still refuse
/// it), `carol` is in no approver group.
pub const TOKENS: &[(&str, &str, &str)] = &[
    ("alice", "alice-token-0123456789", "[\"dba\"]"),
    ("dave", "dave-token-0123456789", "[\"dba\"]"),
    ("agent", "agent-token-0123456789", "[\"dba\"]"),
    ("carol", "carol-token-0123456789", "[]"),
];

/// The token of `user`.
pub fn token(user: &str) -> &'static str {
    TOKENS.iter().find(|t| t.0 == user).expect("a test token").1
}

/// User `agent` reads freely and has its writes reviewed by rule
/// `agent-writes` (`rule_extra`: more keys of the rule), and the admin
/// API with [`TOKENS`].
pub fn configure(cfg: &mut TestConfig, rule_extra: &str) {
    std::fs::write(
        cfg.path().join("review.toml"),
        format!(
            "[[rule]]\nname = \"agent-writes\"\nusers = [\"agent\"]\ntargets = [\"*\"]\n\
             allow = [\"read\", \"tx\", \"session\"]\nreview = [\"write\"]\n\
             approvers = [\"dba\"]\n{rule_extra}\n"
        ),
    )
    .unwrap();
    cfg.toml
        .push_str("\n[policy]\nfiles = [\"review.toml\"]\n\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    for (user, token, groups) in TOKENS {
        cfg.secret(&format!("{user}.token"), token);
        cfg.toml.push_str(&format!(
            "\n[[admin.token]]\nuser = \"{user}\"\ngroups = {groups}\ntoken_file = \"{user}.token\"\n"
        ));
    }
}

/// One API call: its status and JSON body.
pub async fn api(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gw.running.admin_addr.expect("the admin listener");
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: sqlgate\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    let status: u16 = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {out}"));
    let json = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// The open sessions, as an operator's API call lists them.
pub async fn live_sessions(gw: &Gateway) -> serde_json::Value {
    let (status, live) = api(gw, "GET", "/api/sessions/live", Some(token("carol")), None).await;
    assert_eq!(status, 200, "{live}");
    live
}

/// Ends the only live session (`protocol`: `postgres` or `mysql`) as an
/// operator; the API's status.
pub async fn end_the_live_session(gw: &Gateway, protocol: &str) -> u16 {
    let live = live_sessions(gw).await;
    let id = live[0]["id"].as_u64().expect("a live session");
    api(
        gw,
        "POST",
        &format!("/api/sessions/live/{protocol}/{id}/end"),
        Some(token("carol")),
        Some(serde_json::json!({})),
    )
    .await
    .0
}

/// Approves request `id` as `user` (the status and body).
pub async fn approve(gw: &Gateway, id: u64, user: &str) -> (u16, serde_json::Value) {
    api(
        gw,
        "POST",
        &format!("/api/approvals/{id}/approve"),
        Some(token(user)),
        Some(serde_json::json!({ "reason": "looks right" })),
    )
    .await
}

/// Denies request `id` as `user` with `reason`.
pub async fn deny(gw: &Gateway, id: u64, user: &str, reason: &str) -> (u16, serde_json::Value) {
    api(
        gw,
        "POST",
        &format!("/api/approvals/{id}/deny"),
        Some(token(user)),
        Some(serde_json::json!({ "reason": reason })),
    )
    .await
}

/// Waits until a request is pending and returns its number (the
/// registry is watched; no guessed delay).
pub async fn pending(gw: &Gateway) -> u64 {
    pending_other_than(gw, &[]).await
}

/// Waits until a request other than those `seen` is pending; its number.
pub async fn pending_other_than(gw: &Gateway, seen: &[u64]) -> u64 {
    let approvals = gw.running.approvals.clone().expect("approvals are on");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(r) = approvals
            .list()
            .into_iter()
            .find(|r| r.state == sqlgate::approvals::State::Pending && !seen.contains(&r.id))
        {
            return r.id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing (else) was held"
        );
        tokio::task::yield_now().await;
    }
}

/// Waits until request `id` is no longer pending; its state's name.
pub async fn settled(gw: &Gateway, id: u64) -> String {
    let approvals = gw.running.approvals.clone().expect("approvals are on");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let state = approvals.get(id).expect("the request").state;
        if state != sqlgate::approvals::State::Pending {
            return state.name().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "#{id} stayed pending");
        tokio::task::yield_now().await;
    }
}

/// A table of three rows, created directly; its name is the test's.
pub async fn table(server: &super::pg::PgServer, name: &str) -> tokio_postgres::Client {
    let direct = super::gateway::connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (id int primary key, v text); \
             INSERT INTO {name} VALUES (1, 'a'), (2, 'b'), (3, 'c'); \
             GRANT ALL ON {name} TO app_owner"
        ))
        .await
        .unwrap();
    direct
}

/// The admin listener's `/metrics`.
pub async fn metrics(gw: &Gateway) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(gw.running.admin_addr.unwrap())
        .await
        .unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: sqlgate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}

pub async fn rows(direct: &tokio_postgres::Client, name: &str) -> i64 {
    direct
        .query_one(&format!("SELECT count(*) FROM {name}"), &[])
        .await
        .unwrap()
        .get(0)
}
