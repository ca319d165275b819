//! Just-in-time approval on the MySQL wire: a reviewed statement waits on
//! its connection (text protocol and prepared executions), runs when
//! approved, and fails with ERR 1227 naming the decision when denied.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::approvals::{self, api, approve, deny, pending};
use crate::support::gateway::{TestConfig, AGENT_PW};
use crate::support::mariadb;

/// A table made directly (`create`), and a gateway whose policy reviews
/// the agent's writes: the direct connection, the config (kept alive for
/// its files) and the gateway.
async fn held_table(create: &str) -> (Conn, TestConfig, crate::support::gateway::Gateway) {
    held_table_with(create, "").await
}

/// The same, with `rule_extra` in the reviewing rule.
async fn held_table_with(
    create: &str,
    rule_extra: &str,
) -> (Conn, TestConfig, crate::support::gateway::Gateway) {
    let my = mariadb::shared();
    let mut direct = Conn::new(Opts::from_url(&my.direct_url()).unwrap())
        .await
        .unwrap();
    direct.query_drop(create).await.unwrap();
    let mut cfg = TestConfig::mysql(my);
    approvals::configure(&mut cfg, rule_extra);
    let gw = cfg.start().await;
    (direct, cfg, gw)
}

#[tokio::test]
async fn a_held_write_runs_when_approved_and_fails_when_denied() {
    let (mut direct, _cfg, gw) = held_table(
        "DROP TABLE IF EXISTS app.held_my; CREATE TABLE app.held_my (id int primary key, v text); \
             INSERT INTO app.held_my VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    )
    .await;
    let mut agent = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap();
    // Text protocol: approved, it runs.
    let held = tokio::spawn(async move {
        let r = agent.query_drop("DELETE FROM held_my WHERE id = 1").await;
        (agent, r)
    });
    let id = pending(&gw).await;
    assert_eq!(approve(&gw, id, "agent").await.0, 403, "four eyes");
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    let (mut agent, r) = held.await.unwrap();
    r.unwrap();
    assert_eq!(agent.affected_rows(), 1);
    // A prepared execution: held with its value; denied, it fails.
    let stmt = agent
        .prep("DELETE FROM held_my WHERE id = ?")
        .await
        .expect("preparing is not held");
    let held = tokio::spawn(async move {
        let r = agent.exec_drop(&stmt, (2,)).await;
        (agent, r)
    });
    let id = pending(&gw).await;
    let (_, shown) = api(
        &gw,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(approvals::token("dave")),
        None,
    )
    .await;
    assert_eq!(
        shown["statements"][0]["parameters"],
        serde_json::json!(["2"])
    );
    assert_eq!(deny(&gw, id, "dave", "not that one").await.0, 200);
    let (mut agent, r) = held.await.unwrap();
    match r.unwrap_err() {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1227);
            assert!(
                e.message.contains("denied by dave: not that one"),
                "{}",
                e.message
            );
        }
        e => panic!("{e}"),
    }
    // The session goes on; only the approved write ran.
    let n: Option<i64> = agent
        .query_first("SELECT COUNT(*) FROM held_my")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    direct.query_drop("DROP TABLE app.held_my").await.unwrap();
}

/// `KILL QUERY` of a session whose statement is held withdraws it: the
/// statement fails as interrupted (1317), nothing runs, and a client that
/// leaves while held withdraws its request too.
#[tokio::test]
async fn kill_query_or_leaving_withdraws_a_held_statement() {
    let (mut direct, _cfg, gw) = held_table(
        "DROP TABLE IF EXISTS app.held_kill; CREATE TABLE app.held_kill (id int primary key); \
             INSERT INTO app.held_kill VALUES (1), (2)",
    )
    .await;
    let url = gw.mysql_url("agent", AGENT_PW, "app");
    let mut agent = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    let gateway_id = agent.id();
    let held = tokio::spawn(async move {
        let r = agent.query_drop("DELETE FROM held_kill").await;
        (agent, r)
    });
    let id = pending(&gw).await;
    let mut killer = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    killer
        .query_drop(format!("KILL QUERY {gateway_id}"))
        .await
        .unwrap();
    let (agent, r) = held.await.unwrap();
    match r.unwrap_err() {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1317, "{}", e.message),
        e => panic!("{e}"),
    }
    assert_eq!(
        crate::support::approvals::settled(&gw, id).await,
        "withdrawn"
    );
    assert_eq!(approve(&gw, id, "alice").await.0, 409);
    // A client that leaves while held withdraws its request.
    drop(agent);
    let mut leaving = Conn::new(Opts::from_url(&url).unwrap()).await.unwrap();
    let held = tokio::spawn(async move {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            leaving.query_drop("DELETE FROM held_kill"),
        )
        .await;
    });
    let id = pending(&gw).await;
    held.abort();
    let _ = held.await;
    assert_eq!(
        crate::support::approvals::settled(&gw, id).await,
        "withdrawn"
    );
    let n: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM app.held_kill")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
    direct.query_drop("DROP TABLE app.held_kill").await.unwrap();
}

/// The mariadb client waits while its DELETE is held and prints the
/// result once it is approved; a denied one prints the decision.
#[tokio::test]
async fn the_mariadb_client_waits_for_the_approval() {
    let (mut direct, _cfg, gw) = held_table(
        "DROP TABLE IF EXISTS app.held_cli; CREATE TABLE app.held_cli (id int primary key); \
             INSERT INTO app.held_cli VALUES (1), (2)",
    )
    .await;
    let port = gw.mysql_port();
    let cli = move |sql: &'static str| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("mariadb")
                .args(["--no-defaults", "--host=127.0.0.1", "--user=agent", "-vv"])
                .arg(format!("--port={port}"))
                .arg(format!("--password={AGENT_PW}"))
                .args(["app", "-e", sql])
                .output()
                .unwrap()
        })
    };
    let approved = cli("DELETE FROM held_cli WHERE id = 1");
    let id = pending(&gw).await;
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    let out = approved.await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 row affected"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let denied = cli("DELETE FROM held_cli WHERE id = 2");
    let id = pending(&gw).await;
    assert_eq!(deny(&gw, id, "dave", "keep it").await.0, 200);
    let out = denied.await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR 1227") && stderr.contains("denied by dave: keep it"),
        "{stderr}"
    );
    let n: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM app.held_cli")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    direct.query_drop("DROP TABLE app.held_cli").await.unwrap();
}

/// An operator ends a session whose write waits for approval: the write
/// is withdrawn at once and never runs, even if approved afterwards.
#[tokio::test]
async fn ending_a_session_withdraws_its_held_statement() {
    let (mut direct, _cfg, gw) = held_table(
        "DROP TABLE IF EXISTS app.held_end; CREATE TABLE app.held_end (id int primary key); \
             INSERT INTO app.held_end VALUES (1), (2)",
    )
    .await;
    let mut agent = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap();
    let held = tokio::spawn(async move { agent.query_drop("DELETE FROM held_end").await });
    let id = pending(&gw).await;
    assert_eq!(approvals::end_the_live_session(&gw, "mysql").await, 200);
    let e = tokio::time::timeout(std::time::Duration::from_secs(10), held)
        .await
        .expect("withdrawn at once, not left waiting")
        .unwrap()
        .expect_err("withdrawn");
    assert!(e.to_string().contains("withdrawn"), "{e}");
    // Too late to approve: it is withdrawn (or gone with its session).
    assert_ne!(approve(&gw, id, "alice").await.0, 200);
    let n: Option<i64> = direct
        .query_first("SELECT COUNT(*) FROM app.held_end")
        .await
        .unwrap();
    assert_eq!(n, Some(2), "the DELETE never ran");
    direct.query_drop("DROP TABLE app.held_end").await.unwrap();
}

/// `review_mode = "retry"` on the MySQL wire: mysql_async's text query
/// and prepared execution and the mariadb client are refused at once with
/// ERR 1227 naming the request; once approved, the same statement (the
/// same values) runs once; other values make a request of their own.
#[tokio::test]
async fn retry_mode_on_mysql_runs_an_approved_statement_once() {
    let (mut direct, _cfg, gw) = held_table_with(
        "DROP TABLE IF EXISTS app.held_my_retry; CREATE TABLE app.held_my_retry (id int primary key); \
             INSERT INTO app.held_my_retry VALUES (1), (2), (3)",
        "review_mode = \"retry\"",
    )
    .await;
    let mut agent = Conn::new(Opts::from_url(&gw.mysql_url("agent", AGENT_PW, "app")).unwrap())
        .await
        .unwrap();
    let refused = |e: mysql_async::Error| match e {
        mysql_async::Error::Server(e) => {
            assert_eq!(e.code, 1227, "{}", e.message);
            e.message
        }
        other => panic!("{other}"),
    };
    // Text protocol.
    let first = refused(
        agent
            .query_drop("DELETE FROM held_my_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    let id = pending(&gw).await;
    assert!(first.contains(&format!("request #{id} ")), "{first}");
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    agent
        .query_drop("delete from held_my_retry   where id = 1")
        .await
        .expect("approved: runs once");
    assert_eq!(held_rows(&mut direct).await, 2);
    let used = refused(
        agent
            .query_drop("DELETE FROM held_my_retry WHERE id = 1")
            .await
            .unwrap_err(),
    );
    assert!(!used.contains(&format!("request #{id} ")), "{used}");
    // A prepared execution: its bound value is part of what is approved.
    let stmt = agent
        .prep("DELETE FROM held_my_retry WHERE id = ?")
        .await
        .expect("preparing is not held");
    let first = refused(agent.exec_drop(&stmt, (2,)).await.unwrap_err());
    let id = approvals::pending_other_than(&gw, &[id]).await;
    assert!(first.contains(&format!("request #{id} ")), "{first}");
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    let other_value = refused(agent.exec_drop(&stmt, (3,)).await.unwrap_err());
    assert!(
        !other_value.contains(&format!("request #{id} ")),
        "{other_value}"
    );
    agent
        .exec_drop(&stmt, (2,))
        .await
        .expect("approved with value 2: runs");
    assert_eq!(held_rows(&mut direct).await, 1);
    // The mariadb client: refused naming its request, then runs.
    let port = gw.mysql_port();
    let cli = move || {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("mariadb")
                .args(["--no-defaults", "--host=127.0.0.1", "--user=agent", "-vv"])
                .arg(format!("--port={port}"))
                .arg(format!("--password={AGENT_PW}"))
                .args(["app", "-e", "DELETE FROM held_my_retry WHERE id = 3"])
                .output()
                .unwrap()
        })
    };
    let out = cli().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("ERROR 1227") && stderr.contains("held for approval as request #"),
        "{stderr}"
    );
    let id = gw
        .running
        .approvals
        .as_ref()
        .unwrap()
        .list()
        .into_iter()
        .find(|r| {
            r.ask.statements[0].text.ends_with("id = 3")
                && r.state == sqlgate::approvals::State::Pending
        })
        .expect("the client's request")
        .id;
    assert!(stderr.contains(&format!("request #{id} ")), "{stderr}");
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    let out = cli().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(held_rows(&mut direct).await, 0);
    direct
        .query_drop("DROP TABLE app.held_my_retry")
        .await
        .unwrap();
}

/// Rows left in `app.held_my_retry`.
async fn held_rows(direct: &mut Conn) -> i64 {
    direct
        .query_first::<i64, _>("SELECT COUNT(*) FROM app.held_my_retry")
        .await
        .unwrap()
        .unwrap()
}
