//! Just-in-time approval on the PostgreSQL wire: a write a rule reviews
//! waits on its connection (psql shows the notice at once), runs when
//! approved through the admin API, and never runs when denied, expired or
//! withdrawn. Four eyes and approver groups hold for the API.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::approvals::{self, api, approve, deny, metrics, pending, rows, settled, table};
use crate::support::gateway::{connect, TestConfig, AGENT_PW};
use crate::support::pg;

/// psql's DELETE is held: the notice names the request at once, the
/// requester's own approval and a non-approver's are refused, an
/// approver's lets it run, and the recording holds the request and its
/// decision.
#[tokio::test]
async fn psql_waits_with_a_notice_and_runs_once_approved() {
    let server = pg::shared();
    let direct = table(server, "held_psql").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let mut psql = Command::new("psql")
        .arg(gw.conn_str("agent", AGENT_PW, "app"))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg("DELETE FROM held_psql WHERE id = 2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The notice arrives while the statement waits.
    let stderr = psql.stderr.take().unwrap();
    let notice = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stderr).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(
        notice.contains("NOTICE:  sqlgate: held for approval #"),
        "{notice}"
    );
    let id = pending(&gw).await;
    assert!(notice.contains(&format!("approve {id}")), "{notice}");
    let (status, shown) = api(
        &gw,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(approvals::token("carol")),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shown["requester"]["user"], "agent");
    assert_eq!(
        shown["statements"][0]["text"],
        "DELETE FROM held_psql WHERE id = 2"
    );
    assert_eq!(shown["statements"][0]["tags"][0], "write.delete");
    assert_eq!(
        shown["statements"][0]["fingerprint"],
        "DELETE FROM held_psql WHERE id = ?"
    );
    assert_eq!(shown["rule"], "agent-writes");
    // No token, a wrong one: refused.
    assert_eq!(api(&gw, "GET", "/api/approvals", None, None).await.0, 401);
    assert_eq!(
        api(
            &gw,
            "GET",
            "/api/approvals",
            Some("not-a-token-at-all"),
            None
        )
        .await
        .0,
        401
    );
    // Four eyes: the requester cannot approve, even in the approver group.
    let (status, body) = approve(&gw, id, "agent").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("four eyes"));
    // Not an approver.
    assert_eq!(approve(&gw, id, "carol").await.0, 403);
    assert_eq!(rows(&direct, "held_psql").await, 3, "nothing ran yet");
    // A second process approves: the CLI, as alice.
    let url = format!("http://{}", gw.running.admin_addr.unwrap());
    // (Run off the test's runtime: the gateway answers on it.)
    let cli = |user: &'static str, args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(env!("CARGO_BIN_EXE_sqlgate"))
                .arg("approvals")
                .args(&args)
                .args(["--admin-url", &url])
                .env("SQLGATE_ADMIN_TOKEN", approvals::token(user))
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        })
    };
    let (ok, listed) = cli("alice", &["list"]).await.unwrap();
    assert!(ok, "{listed}");
    assert!(
        listed.contains("pending") && listed.contains("DELETE FROM held_psql WHERE id = 2"),
        "{listed}"
    );
    let (ok, shown) = cli("alice", &["show", &id.to_string()]).await.unwrap();
    assert!(ok && shown.contains("[write.delete] (reviewed)"), "{shown}");
    let (ok, own) = cli("agent", &["approve", &id.to_string()]).await.unwrap();
    assert!(!ok && own.contains("four eyes"), "{own}");
    let (ok, approved) = cli(
        "alice",
        &["approve", &id.to_string(), "--reason", "one row"],
    )
    .await
    .unwrap();
    assert!(ok, "{approved}");
    assert!(
        approved.contains(&format!("request #{id}: approved")),
        "{approved}"
    );
    let out = tokio::task::spawn_blocking(move || psql.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "DELETE 1");
    assert_eq!(rows(&direct, "held_psql").await, 2);
    // A decided request stays decided.
    assert_eq!(approve(&gw, id, "dave").await.0, 409);
    // The recording holds the request and its decision.
    let rec = gw.running.recorder.clone().unwrap();
    rec.flush();
    let store = cfg.path().join(sqlgate::store::config::DEFAULT_FILE);
    let mut s = sqlgate::store::sqlite::SqliteStore::open(&store).unwrap();
    use sqlgate::store::Store;
    let mut seen = Vec::new();
    for sid in s.session_ids().unwrap() {
        for e in sqlgate::store::events(&s.rows(&sid).unwrap()) {
            if e.kind == sqlgate::store::Kind::Approval {
                let a: sqlgate::store::ApprovalEvent = serde_json::from_str(&e.body).unwrap();
                seen.push((a.request, a.state, a.by));
            }
        }
    }
    assert_eq!(
        seen,
        vec![
            (id, "pending".to_owned(), vec![]),
            (id, "approved".to_owned(), vec!["alice".to_owned()])
        ]
    );
}

/// A denied UPDATE (tokio-postgres, extended protocol with a parameter)
/// fails with the decision, who made it and why, and never runs; a
/// denial needs a reason. The session goes on.
#[tokio::test]
async fn a_denied_statement_fails_with_the_reason_and_never_runs() {
    let server = pg::shared();
    let direct = table(server, "held_deny").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let held = tokio::spawn(async move {
        let r = client.execute("UPDATE held_deny SET v = $1", &[&"z"]).await;
        (client, r)
    });
    let id = pending(&gw).await;
    assert_eq!(
        deny(&gw, id, "alice", "  ").await.0,
        400,
        "a reason is required"
    );
    let (status, body) = deny(&gw, id, "alice", "too broad").await;
    assert_eq!(status, 200, "{body}");
    let (client, r) = held.await.unwrap();
    let e = r.unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "42501");
    assert!(
        db.message()
            .contains(&format!("request #{id} was denied by alice: too broad")),
        "{}",
        db.message()
    );
    let changed: i64 = direct
        .query_one("SELECT count(*) FROM held_deny WHERE v = 'z'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(changed, 0);
    // /metrics counts it.
    let metrics = metrics(&gw).await;
    for line in [
        "sqlgate_approvals_pending 0",
        "sqlgate_approvals_denied_total 1",
        "sqlgate_approvals_approved_total 0",
        "sqlgate_approval_wait_seconds_count 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // The session goes on.
    let n: i64 = client
        .query_one("SELECT count(*) FROM held_deny", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

/// Undecided within `review_timeout`: it fails as expired and never runs.
#[tokio::test]
async fn an_undecided_statement_expires_and_never_runs() {
    let server = pg::shared();
    let direct = table(server, "held_expire").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "review_timeout = \"1s\"");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let e = client
        .batch_execute("DELETE FROM held_expire")
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert!(
        db.message()
            .contains("expired after 1s with 0 of 1 approvals"),
        "{}",
        db.message()
    );
    assert_eq!(rows(&direct, "held_expire").await, 3);
}

/// `approvals = 2`: one approval is not enough, the same person twice
/// does not count twice, a second person's runs it.
#[tokio::test]
async fn two_approvals_take_two_people() {
    let server = pg::shared();
    let direct = table(server, "held_two").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "approvals = 2");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let held = tokio::spawn(async move { client.batch_execute("DELETE FROM held_two").await });
    let id = pending(&gw).await;
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    assert_eq!(approve(&gw, id, "alice").await.0, 409);
    assert_eq!(rows(&direct, "held_two").await, 3, "one approval of two");
    let (status, body) = approve(&gw, id, "dave").await;
    assert_eq!(status, 200);
    assert_eq!(body["approvals"].as_array().unwrap().len(), 2);
    held.await.unwrap().unwrap();
    assert_eq!(rows(&direct, "held_two").await, 0);
}

/// A client that leaves while its statement is held withdraws it: an
/// approval afterwards is refused and nothing runs.
#[tokio::test]
async fn a_client_that_leaves_withdraws_its_request() {
    let server = pg::shared();
    let direct = table(server, "held_gone").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let mut psql = Command::new("psql")
        .arg(gw.conn_str("agent", AGENT_PW, "app"))
        .args(["-X", "-c", "DELETE FROM held_gone"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = pending(&gw).await;
    psql.kill().unwrap();
    psql.wait().unwrap();
    assert_eq!(settled(&gw, id).await, "withdrawn");
    assert_eq!(approve(&gw, id, "alice").await.0, 409);
    assert_eq!(rows(&direct, "held_gone").await, 3);
}

/// A prepared write is held at each execution, not at prepare time: the
/// approver sees the bound values, and one approval runs one execution.
#[tokio::test]
async fn each_execution_of_a_prepared_write_is_held_with_its_values() {
    let server = pg::shared();
    let direct = table(server, "held_exec").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let delete = client
        .prepare("DELETE FROM held_exec WHERE id = $1")
        .await
        .expect("preparing is not held");
    let client = std::sync::Arc::new(client);
    let run = |id: i32| {
        let (client, delete) = (client.clone(), delete.clone());
        tokio::spawn(async move { client.execute(&delete, &[&id]).await })
    };
    let first = run(1);
    let id1 = pending(&gw).await;
    let (_, shown) = api(
        &gw,
        "GET",
        &format!("/api/approvals/{id1}"),
        Some(approvals::token("alice")),
        None,
    )
    .await;
    // (tokio-postgres binds binary: shown as its bytes, as recordings do.)
    assert_eq!(
        shown["statements"][0]["parameters"],
        serde_json::json!(["\\x00000001"])
    );
    assert_eq!(approve(&gw, id1, "alice").await.0, 200);
    assert_eq!(first.await.unwrap().unwrap(), 1);
    // The next execution asks again; denied, it fails in place and the
    // session goes on.
    let second = run(2);
    let id2 = pending(&gw).await;
    assert_ne!(id1, id2);
    assert_eq!(deny(&gw, id2, "alice", "one is enough").await.0, 200);
    let e = second.await.unwrap().unwrap_err();
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("denied by alice"),
        "{e}"
    );
    assert_eq!(rows(&direct, "held_exec").await, 2);
    let n: i64 = client
        .query_one("SELECT count(*) FROM held_exec", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

/// A reviewed prepared statement stays held whatever follows under its
/// name: a second Parse of the name that the server refuses, a SQL
/// `PREPARE` of the name that never runs, then SQL `EXECUTE` and a
/// protocol Bind of it — both held, both denied, nothing deleted.
#[tokio::test]
async fn a_reviewed_prepared_statement_cannot_be_run_around_its_hold() {
    use crate::support::raw::{error_field, RawClient};
    use bytes::BytesMut;
    use postgres_protocol::message::frontend;
    let server = pg::shared();
    let direct = table(server, "held_raw").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let (mut c, _) = RawClient::connect(
        gw.addr(),
        &[("user", "agent"), ("database", "app")],
        AGENT_PW,
    )
    .await
    .unwrap();
    let parse_sync = |name: &str, sql: &str| {
        let mut out = BytesMut::new();
        frontend::parse(name, sql, std::iter::empty(), &mut out).unwrap();
        frontend::sync(&mut out);
        out
    };
    c.send(&parse_sync("d", "DELETE FROM held_raw")).await;
    let tags: Vec<u8> = c.until_ready().await.iter().map(|m| m.0).collect();
    assert_eq!(tags, b"1Z", "preparing is not held");
    // The server refuses this one (d exists): d stays the DELETE.
    c.send(&parse_sync("d", "SELECT 1")).await;
    let answer = c.until_ready().await;
    assert_eq!(error_field(&answer[0].1, b'C').as_deref(), Some("42P05"));
    // A PREPARE of d that never runs.
    c.send(&parse_sync("", "PREPARE d AS SELECT 1")).await;
    c.until_ready().await;
    let denied = |answer: &[crate::support::raw::Msg]| {
        answer.iter().any(|(tag, body)| {
            *tag == b'E' && error_field(body, b'M').is_some_and(|m| m.contains("denied by alice"))
        })
    };
    // SQL EXECUTE of the protocol-prepared DELETE: held.
    let mut out = BytesMut::new();
    frontend::query("EXECUTE d", &mut out).unwrap();
    c.send(&out).await;
    let id = pending(&gw).await;
    assert_eq!(deny(&gw, id, "alice", "no").await.0, 200);
    let answer = c.until_ready().await;
    assert!(denied(&answer), "{answer:?}");
    // A Bind of it: held.
    let mut out = BytesMut::new();
    out.extend_from_slice(b"B");
    let body: &[u8] = b"\0d\0\0\0\0\0\0\0";
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    frontend::execute("", 0, &mut out).unwrap();
    frontend::sync(&mut out);
    c.send(&out).await;
    let id = pending(&gw).await;
    assert_eq!(deny(&gw, id, "alice", "no").await.0, 200);
    let answer = c.until_ready().await;
    assert!(denied(&answer), "{answer:?}");
    assert_eq!(rows(&direct, "held_raw").await, 3);
}

/// A text whose statements two rules review is refused: one rule's
/// approvers must not approve what another rule asks others for.
#[tokio::test]
async fn statements_of_two_reviewing_rules_are_not_approved_together() {
    let server = pg::shared();
    let direct = table(server, "held_mixed").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    std::fs::write(
        cfg.path().join("review2.toml"),
        "[[rule]]\nname = \"drops\"\nusers = [\"agent\"]\ntargets = [\"*\"]\n\
         review = [\"ddl.drop\"]\napprovers = [\"dba\"]\napprovals = 2\n",
    )
    .unwrap();
    cfg.toml = cfg.toml.replace(
        "files = [\"review.toml\"]",
        "files = [\"review.toml\", \"review2.toml\"]",
    );
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let e = client
        .batch_execute("DELETE FROM held_mixed WHERE id = 1; DROP TABLE held_mixed")
        .await
        .unwrap_err();
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("reviewed by different rules"),
        "{e}"
    );
    assert_eq!(rows(&direct, "held_mixed").await, 3);
    assert!(gw.running.approvals.as_ref().unwrap().list().is_empty());
}

/// A gateway that stops while a statement is held: the client's session
/// ends with the shutdown error, the request is withdrawn (and recorded
/// so), and nothing runs.
#[tokio::test]
async fn a_gateway_that_stops_withdraws_what_it_holds() {
    let server = pg::shared();
    let direct = table(server, "held_stop").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let held = tokio::spawn(async move { client.batch_execute("DELETE FROM held_stop").await });
    let id = pending(&gw).await;
    gw.running.shutdown.cancel();
    let e = held.await.unwrap().unwrap_err();
    assert!(
        e.as_db_error().is_some_and(|d| d.code().code() == "57P01") || e.is_closed(),
        "{e}"
    );
    assert_eq!(settled(&gw, id).await, "withdrawn");
    assert_eq!(rows(&direct, "held_stop").await, 3);
}

/// A CancelRequest withdraws a held statement: the client gets 57014 as
/// for any cancelled statement, the request is withdrawn, nothing runs,
/// and the session goes on.
#[tokio::test]
async fn a_cancel_withdraws_a_held_statement() {
    let server = pg::shared();
    let direct = table(server, "held_cancel").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let client = std::sync::Arc::new(connect(&gw.conn_str("agent", AGENT_PW, "app")).await);
    let token = client.cancel_token();
    let c = client.clone();
    let held = tokio::spawn(async move { c.batch_execute("DELETE FROM held_cancel").await });
    let id = pending(&gw).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let e = held.await.unwrap().unwrap_err();
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("57014"),
        "{e}"
    );
    assert_eq!(settled(&gw, id).await, "withdrawn");
    assert_eq!(approve(&gw, id, "alice").await.0, 409);
    assert_eq!(rows(&direct, "held_cancel").await, 3);
    let n: i64 = client
        .query_one("SELECT count(*) FROM held_cancel", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

/// `review_mode = "retry"`: refused at once naming the request; once
/// approved, the same statement (whitespace, comments and keyword case
/// aside, the same values) from the same identity runs once; other
/// values ask again; two retries at once, one runs.
#[tokio::test]
async fn retry_mode_runs_an_approved_statement_once() {
    let server = pg::shared();
    let direct = table(server, "held_retry").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "review_mode = \"retry\"");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let message = |e: tokio_postgres::Error| e.as_db_error().unwrap().message().to_owned();
    let first = message(
        client
            .batch_execute("DELETE FROM held_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    let id = pending(&gw).await;
    assert!(first.contains(&format!("request #{id}")), "{first}");
    // Again before a decision: the same request.
    let again = message(
        client
            .batch_execute("DELETE FROM held_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    assert!(again.contains(&format!("request #{id}")), "{again}");
    assert_eq!(gw.running.approvals.as_ref().unwrap().list().len(), 1);
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    // Other values: a request of their own.
    let other = message(
        client
            .batch_execute("DELETE FROM held_retry WHERE id = 2")
            .await
            .unwrap_err(),
    );
    assert!(!other.contains(&format!("request #{id}")), "{other}");
    // The same statement, written differently: runs, once.
    client
        .batch_execute("delete   from held_retry\n where id = 1 /* as approved */")
        .await
        .unwrap();
    assert_eq!(rows(&direct, "held_retry").await, 2);
    let used = message(
        client
            .batch_execute("DELETE FROM held_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    assert!(used.contains("held for approval as request #"), "{used}");
    // Two retries at once: one runs.
    let c3 = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let _ = c3
        .batch_execute("DELETE FROM held_retry WHERE id = 3")
        .await;
    let id3 = gw
        .running
        .approvals
        .as_ref()
        .unwrap()
        .list()
        .into_iter()
        .find(|r| r.ask.statements[0].text.ends_with("id = 3"))
        .unwrap()
        .id;
    assert_eq!(approve(&gw, id3, "alice").await.0, 200);
    let c4 = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let (a, b) = tokio::join!(
        c3.execute("DELETE FROM held_retry WHERE id = 3", &[]),
        c4.execute("DELETE FROM held_retry WHERE id = 3", &[])
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    assert_eq!(rows(&direct, "held_retry").await, 1);
}
