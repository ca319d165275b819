//! Token logins on the MySQL wire, against a real local HTTPS issuer:
//! stock clients send the token as their password with no extra option
//! (caching_sha2_password's full authentication over TLS), or by
//! mysql_clear_password where they offer it; bad tokens are refused with
//! their reason; a session ends when its token expires.

use std::process::Command;

use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::gateway::{Gateway, TestConfig};
use crate::support::issuer::Issuer;
use crate::support::mariadb;

const AUD: &str = "sqlgate";

fn github(issuer: &Issuer, repository_id: &str, secs: i64) -> Value {
    issuer.claims(
        AUD,
        "repo:acme/app:ref:refs/heads/main",
        secs,
        json!({ "repository_id": repository_id, "ref": "refs/heads/main" }),
    )
}

async fn gateway(issuer: &Issuer, settings: &str) -> (TestConfig, Gateway, std::path::PathBuf) {
    let mut cfg = TestConfig::mysql(mariadb::shared());
    let crt = cfg.with_tls("mysql", &["127.0.0.1"]);
    cfg.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.oidc_people.email\"]\nfunction = \"email\"\n",
    );
    cfg.toml.push_str(&format!(
        "
[[oidc]]
name = \"github\"
issuer = \"{url}\"
audiences = [\"{AUD}\"]
targets = [\"app\"]
ca_file = \"{ca}\"
{settings}

[[oidc.identity]]
when = {{ repository_id = \"123456\" }}
user = \"ci-bot\"
groups = [\"agents\"]
",
        url = issuer.url,
        ca = issuer.ca.display(),
    ));
    let gw = cfg.start().await;
    gw.catalog_read().await;
    (cfg, gw, crt)
}

fn opts(gw: &Gateway, crt: &std::path::Path, token: &str, tls: bool) -> mysql_async::OptsBuilder {
    let builder = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(gw.mysql_port())
        .user(Some("github"))
        .pass(Some(token))
        .db_name(Some("app"));
    if tls {
        builder.ssl_opts(
            mysql_async::SslOpts::default().with_root_certs(vec![crt.to_path_buf().into()]),
        )
    } else {
        builder
    }
}

fn server_error(e: mysql_async::Error) -> (u16, String) {
    match e {
        mysql_async::Error::Server(s) => (s.code, s.message),
        other => panic!("not a server error: {other}"),
    }
}

async fn people_table() {
    let mut direct = mysql_async::Conn::new(
        mysql_async::Opts::from_url(&mariadb::shared().direct_url()).unwrap(),
    )
    .await
    .unwrap();
    direct
        .query_drop(
            "DROP TABLE IF EXISTS oidc_people; CREATE TABLE oidc_people (id INT, email TEXT); \
             INSERT INTO oidc_people VALUES (1, 'jane.doe@example.com')",
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_and_the_mariadb_client_log_in_with_a_token() {
    people_table().await;
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, crt) = gateway(&issuer, "").await;
    let token = issuer.token(&github(&issuer, "123456", 300));
    let mut conn = mysql_async::Conn::new(opts(&gw, &crt, &token, true))
        .await
        .expect("the token logs in");
    let email: Option<String> = conn
        .query_first("SELECT email FROM oidc_people WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(email.as_deref(), Some("j***@example.com"), "masked");
    let (code, message) = server_error(
        conn.query_drop("DELETE FROM oidc_people")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1227, "{message}");
    drop(conn);

    // The mariadb client, with no option but TLS, and a token of several
    // KB; then by mysql_clear_password.
    let long = issuer.long_token(&github(&issuer, "123456", 300));
    let port = gw.mysql_port();
    for extra in [
        &[][..],
        &[
            "--default-auth=mysql_clear_password",
            "--enable-cleartext-plugin",
        ][..],
    ] {
        let (long, crt) = (long.clone(), crt.clone());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "--host=127.0.0.1",
                    "--user=github",
                    "--ssl",
                ])
                .args(&extra)
                .arg(format!("--port={port}"))
                .arg(format!("--ssl-ca={}", crt.display()))
                .arg(format!("--password={long}"))
                .args(["app", "-N", "-e", "SELECT CONCAT('in as ', 'token')"])
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
        assert!(String::from_utf8_lossy(&out.stdout).contains("in as token"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_plain_connections_are_refused_with_their_reason() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, crt) = gateway(&issuer, "").await;
    let expired = issuer.token(&github(&issuer, "123456", -120));
    let other_repo = issuer.token(&github(&issuer, "654321", 300));
    for (token, reason) in [
        (&expired, "token login failed: the token has expired"),
        (
            &other_repo,
            "token login failed: no identity rule matched the token",
        ),
    ] {
        let e = mysql_async::Conn::new(opts(&gw, &crt, token, true))
            .await
            .expect_err("refused");
        let (code, message) = server_error(e);
        assert_eq!(code, 1045);
        assert_eq!(message, reason);
    }
    let good = issuer.token(&github(&issuer, "123456", 300));
    let e = mysql_async::Conn::new(opts(&gw, &crt, &good, false))
        .await
        .expect_err("refused without TLS");
    let (code, message) = server_error(e);
    assert_eq!(code, 1045);
    assert!(message.contains("only over TLS"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_session_ends_when_its_token_expires() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, crt) = gateway(&issuer, "leeway_secs = 0").await;
    let token = issuer.token(&github(&issuer, "123456", 2));
    let mut conn = mysql_async::Conn::new(opts(&gw, &crt, &token, true))
        .await
        .expect("logs in");
    // Runs across the expiry and completes.
    let done: Option<String> = conn
        .query_first("SELECT CONCAT('finished', SLEEP(3))")
        .await
        .expect("the running statement completes");
    assert_eq!(done.as_deref(), Some("finished0"));
    // The ERR comes unasked at the expiry's idle point: the next command
    // fails.
    conn.query_drop("SELECT 1")
        .await
        .expect_err("the session ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_a_password_user_outlives_the_login_token() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, crt) = gateway(&issuer, "leeway_secs = 0").await;
    let token = issuer.token(&github(&issuer, "123456", 2));
    let logged_in = tokio::time::Instant::now();
    let mut conn = mysql_async::Conn::new(opts(&gw, &crt, &token, true))
        .await
        .expect("logs in");
    // Now a password user of the example policy: its session no longer
    // ends when the token does.
    conn.change_user(
        mysql_async::ChangeUserOpts::default()
            .with_user(Some("bot".into()))
            .with_pass(Some("bot-pw".into()))
            .with_db_name(Some("app".into())),
    )
    .await
    .expect("changes to bot");
    tokio::time::sleep_until(logged_in + std::time::Duration::from_millis(3500)).await;
    let one: Option<i64> = conn
        .query_first("SELECT 1")
        .await
        .expect("the session outlived the token");
    assert_eq!(one, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_and_connector_j_log_in_with_a_long_token() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, crt) = gateway(&issuer, "").await;
    let token = issuer.long_token(&github(&issuer, "123456", 300));
    for driver in ["pymysql", "mariadb"] {
        let tool = crate::support::token_tools::token_tool(driver, gw.mysql_port(), &crt);
        let out = crate::support::token_tools::run_with_token(tool, &token).await;
        assert_eq!(out, "in as token", "{driver}");
    }
}
