//! Approvals shared by two gateways through one PostgreSQL store: a
//! statement held on gateway A is listed, shown and approved (or denied)
//! through gateway B's API and CLI, and A's client proceeds; four eyes
//! and approver groups hold across gateways.

use std::time::{Duration, Instant};

use crate::support::approvals::{self, api, approve, pending, table, token};
use crate::support::gateway::{connect, Gateway, TestConfig, AGENT_PW};
use crate::support::pg;

/// Two gateways with approvals on, sharing the store database `db`.
async fn two_gateways(db: &str) -> (Vec<TestConfig>, Gateway, Gateway) {
    two_gateways_with(db, "").await
}

/// The same, with `rule_extra` in the reviewing rule.
async fn two_gateways_with(db: &str, rule_extra: &str) -> (Vec<TestConfig>, Gateway, Gateway) {
    let server = pg::shared();
    server.psql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    server.psql("postgres", &format!("CREATE DATABASE {db}"));
    let configs: Vec<TestConfig> = (0..2)
        .map(|_| {
            let mut c = TestConfig::new(server);
            approvals::configure(&mut c, rule_extra);
            c.secret("store.pw", pg::SUPERUSER_PW);
            c.toml.push_str(&format!(
                "\n[store]\nurl = \"postgres://postgres@127.0.0.1:{}/{db}\"\npassword_file = \"store.pw\"\n",
                server.port
            ));
            c
        })
        .collect();
    let a = configs[0].start().await;
    let b = configs[1].start().await;
    (configs, a, b)
}

/// Waits until B's API lists request `id` (published by A).
async fn listed_on(b: &Gateway, id: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, list) = api(b, "GET", "/api/approvals", Some(token("carol")), None).await;
        assert_eq!(status, 200, "{list}");
        if let Some(r) = list
            .as_array()
            .and_then(|l| l.iter().find(|r| r["id"] == id))
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "#{id} never listed on B: {list}");
        tokio::task::yield_now().await;
    }
}

/// The agent's `sql` through `gw`, held for approval, running in a task
/// of its own: its client and its result once decided.
async fn held_on(
    gw: &Gateway,
    sql: &'static str,
) -> tokio::task::JoinHandle<(tokio_postgres::Client, Result<u64, tokio_postgres::Error>)> {
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    tokio::spawn(async move {
        let r = client.execute(sql, &[]).await;
        (client, r)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_held_on_one_gateway_is_approved_through_another() {
    let server = pg::shared();
    let direct = table(server, "held_shared").await;
    let (_configs, a, b) = two_gateways(&format!("appr_shared_{}", std::process::id())).await;
    let held = held_on(&a, "DELETE FROM held_shared WHERE id = 2").await;
    let id = pending(&a).await;
    let listed = listed_on(&b, id).await;
    assert_eq!(listed["state"]["state"], "pending", "{listed}");
    assert_eq!(listed["requester"]["user"], "agent", "{listed}");
    let (status, shown) = api(
        &b,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(token("carol")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert!(
        shown
            .to_string()
            .contains("DELETE FROM held_shared WHERE id = 2"),
        "{shown}"
    );
    // The rules hold across gateways: no approver, the requester.
    assert_eq!(approve(&b, id, "carol").await.0, 403);
    assert_eq!(approve(&b, id, "agent").await.0, 403, "four eyes");
    // An approver through B: A's client proceeds.
    let decided_at = Instant::now();
    let (status, body) = approve(&b, id, "alice").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["state"], "approved", "{body}");
    let (_client, r) = held.await.unwrap();
    assert_eq!(r.expect("the DELETE runs once approved"), 1);
    assert!(
        decided_at.elapsed() < Duration::from_secs(1),
        "A's client proceeded {:?} after the approval",
        decided_at.elapsed()
    );
    let n: i64 = direct
        .query_one("SELECT count(*) FROM held_shared", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    // Decided: a second decision is refused, as on A.
    assert_eq!(approve(&b, id, "dave").await.0, 409);
    // A number in A's range that A never made: not found, at once.
    assert_eq!(approve(&b, id + 500, "dave").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_through_another_gateway_reaches_the_held_client_with_its_reason() {
    let server = pg::shared();
    let direct = table(server, "held_shared_deny").await;
    let (_configs, a, b) = two_gateways(&format!("appr_shared_deny_{}", std::process::id())).await;
    // Ids are the holding gateway's own range: B's are elsewhere.
    let held = held_on(&a, "UPDATE held_shared_deny SET v = 'z'").await;
    let id = pending(&a).await;
    listed_on(&b, id).await;
    // The CLI against B's API.
    let url = format!("http://{}", b.running.admin_addr.unwrap());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .args([
                "approvals",
                "deny",
                &id.to_string(),
                "--reason",
                "not today",
                "--admin-url",
                &url,
            ])
            .env("SQLGATE_ADMIN_TOKEN", token("dave"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_client, r) = held.await.unwrap();
    let e = r.unwrap_err();
    let message = e
        .as_db_error()
        .expect("a server error")
        .message()
        .to_owned();
    assert!(
        message.contains(&format!("request #{id} was denied by dave: not today")),
        "{message}"
    );
    let changed: i64 = direct
        .query_one("SELECT count(*) FROM held_shared_deny WHERE v = 'z'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(changed, 0);
    // B shows the outcome.
    let (_, shown) = api(
        &b,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(token("carol")),
        None,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shown = shown;
    while shown["state"]["state"] == "pending" {
        assert!(Instant::now() < deadline, "{shown}");
        tokio::task::yield_now().await;
        shown = api(
            &b,
            "GET",
            &format!("/api/approvals/{id}"),
            Some(token("carol")),
            None,
        )
        .await
        .1;
    }
    assert_eq!(shown["state"]["state"], "denied", "{shown}");
    assert_eq!(shown["state"]["by"], "dave", "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_the_holding_gateway_never_answers_is_withdrawn() {
    let server = pg::shared();
    let _direct = table(server, "held_shared_gone").await;
    let db = format!("appr_shared_gone_{}", std::process::id());
    let (_configs, a, b) = two_gateways(&db).await;
    let _held = held_on(&a, "DELETE FROM held_shared_gone").await;
    let id = pending(&a).await;
    listed_on(&b, id).await;
    // A stops answering (it shuts down).
    a.running.shutdown.cancel();
    let (status, body) = approve(&b, id, "alice").await;
    assert_eq!(status, 504, "{body}");
    assert!(body.to_string().contains("withdrawn"), "{body}");
    assert_eq!(
        server.psql(
            &db,
            "SELECT string_agg(status::text, ',') FROM sqlgate_approvals.decisions"
        ),
        "504",
        "withdrawn, so it never applies later"
    );
}

/// Two gateways in `retry` mode sharing store `db`, and the agent's
/// connection through each.
async fn retry_agents(
    db: &str,
) -> (
    Vec<TestConfig>,
    Gateway,
    Gateway,
    tokio_postgres::Client,
    tokio_postgres::Client,
) {
    let (configs, a, b) = two_gateways_with(db, "review_mode = \"retry\"").await;
    let on_a = connect(&a.conn_str("agent", AGENT_PW, "app")).await;
    let on_b = connect(&b.conn_str("agent", AGENT_PW, "app")).await;
    (configs, a, b, on_a, on_b)
}

/// The message of a statement's refusal.
fn refusal_message(e: tokio_postgres::Error) -> String {
    e.as_db_error().expect("a refusal").message().to_owned()
}

/// Waits until B's API shows request `id` in `state` (A publishes it).
async fn shown_on(b: &Gateway, id: u64, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, shown) = api(
            b,
            "GET",
            &format!("/api/approvals/{id}"),
            Some(token("carol")),
            None,
        )
        .await;
        if shown["state"]["state"] == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "#{id} never {state} on B: {shown}"
        );
        tokio::task::yield_now().await;
    }
}

/// `review_mode = "retry"` across gateways: a statement asked on A and
/// approved runs when sent again through B, once: A refuses it afterwards
/// (a new request), and two sends at once through A and B run it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_approved_on_one_gateway_runs_once_on_any() {
    let server = pg::shared();
    let direct = table(server, "held_shared_retry").await;
    let db = format!("appr_shared_retry_{}", std::process::id());
    let (_configs, a, b, on_a, on_b) = retry_agents(&db).await;
    let first = refusal_message(
        on_a.batch_execute("DELETE FROM held_shared_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    let id = pending(&a).await;
    assert!(first.contains(&format!("request #{id}")), "{first}");
    // Asked again through B before a decision (once A has published
    // it): A's pending request.
    listed_on(&b, id).await;
    let pending_on_b = refusal_message(
        on_b.batch_execute("DELETE FROM held_shared_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    assert!(
        pending_on_b.contains(&format!("request #{id}")),
        "{pending_on_b}"
    );
    assert_eq!(approve(&b, id, "alice").await.0, 200);
    shown_on(&b, id, "approved").await;
    // Sent again through B: runs.
    on_b.batch_execute("DELETE FROM held_shared_retry WHERE id = 1")
        .await
        .expect("the approval is used through B");
    assert_eq!(approvals::rows(&direct, "held_shared_retry").await, 2);
    // Used: through A it asks again.
    let again = refusal_message(
        on_a.batch_execute("DELETE FROM held_shared_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    assert!(
        again.contains("held for approval as request #") && !again.contains(&format!("#{id} ")),
        "a new request: {again}"
    );
    // Two sends at once, one through each gateway: one runs.
    let _ = on_a
        .batch_execute("DELETE FROM held_shared_retry WHERE id = 2")
        .await
        .unwrap_err();
    let second = approvals::pending_other_than(&a, &[id]).await;
    let (status, body) = approve(&a, second, "alice").await;
    assert_eq!(status, 200, "{body}");
    shown_on(&b, second, "approved").await;
    let (ra, rb) = tokio::join!(
        on_a.batch_execute("DELETE FROM held_shared_retry WHERE id = 2"),
        on_b.batch_execute("DELETE FROM held_shared_retry WHERE id = 2"),
    );
    assert_eq!(
        usize::from(ra.is_ok()) + usize::from(rb.is_ok()),
        1,
        "exactly one runs: {ra:?} {rb:?}"
    );
    assert_eq!(
        server.psql(
            &db,
            &format!("SELECT count(*) FROM sqlgate_approvals.requests WHERE id IN ({id}, {second}) AND claimed_by IS NOT NULL")
        ),
        "2"
    );
}

/// A retry whose pending request is held by a gateway that is gone (it
/// can no longer be decided) makes a new request on the gateway it
/// reaches, rather than naming the dead one's until it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_pending_on_a_gateway_that_is_gone_asks_anew() {
    let server = pg::shared();
    let _direct = table(server, "held_shared_gone_retry").await;
    let db = format!("appr_shared_gone_retry_{}", std::process::id());
    let (_configs, a, b, on_a, on_b) = retry_agents(&db).await;
    let _ = on_a
        .batch_execute("DELETE FROM held_shared_gone_retry WHERE id = 1")
        .await
        .unwrap_err();
    let id = pending(&a).await;
    listed_on(&b, id).await;
    // A stops; its decisions connection (and its lock) goes with it.
    a.running.shutdown.cancel();
    let instance = (id - 1) / 1_000_000;
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.psql(
        &db,
        &format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND objid = {instance}"
        ),
    ) != "0"
    {
        assert!(Instant::now() < deadline, "A's lock stayed");
        tokio::task::yield_now().await;
    }
    // B no longer lists it: nobody can decide it.
    let (_, list) = api(&b, "GET", "/api/approvals", Some(token("carol")), None).await;
    assert!(
        !list.as_array().unwrap().iter().any(|r| r["id"] == id),
        "{list}"
    );
    let asked = refusal_message(
        on_b.batch_execute("DELETE FROM held_shared_gone_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    assert!(
        asked.contains("held for approval as request #") && !asked.contains(&format!("#{id} ")),
        "a request of B's own: {asked}"
    );
}
