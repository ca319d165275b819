//! Token logins on the PostgreSQL wire, against a real local HTTPS issuer
//! (tests/support/issuer.rs): the token is the password of a cleartext
//! exchange over TLS, its claims become an identity with that identity's
//! policy and masks, and every kind of bad token is refused with its
//! reason.

use std::process::Command;

use serde_json::{json, Value};

use crate::support::gateway::{Gateway, TestConfig};
use crate::support::issuer::Issuer;
use crate::support::pg;

const AUD: &str = "sqlgate";

/// GitHub Actions' claims for a workflow of repository 123456 on `main`.
fn github(issuer: &Issuer, repository_id: &str, git_ref: &str, secs: i64) -> Value {
    issuer.claims(
        AUD,
        &format!("repo:acme/app:ref:{git_ref}"),
        secs,
        json!({
            "repository": "acme/app",
            "repository_id": repository_id,
            "ref": git_ref,
            "environment": "production",
        }),
    )
}

/// A gateway over TLS with provider `github` on `issuer`
/// (`settings`: extra lines of its block), the example policy and a
/// masking rule on `oidc_people.email`.
async fn gateway(issuer: &Issuer, settings: &str) -> (TestConfig, Gateway, std::path::PathBuf) {
    gateway_with(issuer, settings, "").await
}

/// [`gateway`], with more configuration after the `github` block.
async fn gateway_with(
    issuer: &Issuer,
    settings: &str,
    more: &str,
) -> (TestConfig, Gateway, std::path::PathBuf) {
    let mut cfg = TestConfig::new(pg::shared());
    let ca = cfg.with_tls("postgres", &["127.0.0.1"]);
    cfg.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.oidc_people.email\"]\nfunction = \"email\"\n",
    );
    cfg.toml.push_str(&format!(
        "
[[oidc]]
name = \"github\"
issuer = \"{url}\"
audiences = [\"{AUD}\"]
algorithms = [\"RS256\", \"ES256\"]
targets = [\"app\"]
ca_file = \"{ca}\"
{settings}

[[oidc.identity]]
when = {{ repository_id = \"123456\", ref = \"refs/heads/main\" }}
user = \"ci-bot\"
groups = [\"agents\"]
{more}
",
        url = issuer.url,
        ca = issuer.ca.display(),
    ));
    let gw = cfg.start().await;
    gw.catalog_read().await;
    (cfg, gw, ca)
}

fn tls(ca: &std::path::Path) -> tokio_postgres_rustls::MakeRustlsConnect {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

fn conn_str(gw: &Gateway, user: &str) -> String {
    format!(
        "host=127.0.0.1 port={} user={user} dbname=app sslmode=require",
        gw.port()
    )
}

/// Logs in with `token`; the client and its connection task.
async fn login(
    gw: &Gateway,
    ca: &std::path::Path,
    token: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ),
    tokio_postgres::Error,
> {
    let mut config: tokio_postgres::Config = conn_str(gw, "github").parse().unwrap();
    config.password(token);
    let (client, conn) = config.connect(tls(ca)).await?;
    Ok((client, tokio::spawn(conn)))
}

/// The refusal a token gets: FATAL 28000 with the reason, and never the
/// token itself.
async fn refusal(gw: &Gateway, ca: &std::path::Path, token: &str) -> String {
    let e = match login(gw, ca, token).await {
        Ok(_) => panic!("the token should be refused"),
        Err(e) => e,
    };
    let db = e.as_db_error().unwrap_or_else(|| panic!("{e}"));
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "28000"));
    assert!(!db.message().contains(token), "{}", db.message());
    db.message().to_owned()
}

async fn people_table() {
    let direct = crate::support::gateway::connect(&pg::shared().direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS oidc_people;
             CREATE TABLE oidc_people (id int, email text);
             INSERT INTO oidc_people VALUES (1, 'jane.doe@example.com');
             GRANT ALL ON oidc_people TO app_owner;",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_logs_in_as_its_mapped_identity_with_its_policy_and_masks() {
    people_table().await;
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (cfg, gw, ca) = gateway(&issuer, "").await;
    gw.catalog_has("oidc_people").await;
    for kid in [issuer.rsa_kid(), issuer.ec_kid()] {
        let token = issuer.sign(&kid, &github(&issuer, "123456", "refs/heads/main", 300));
        let (client, _conn) = login(&gw, &ca, &token).await.expect("the token logs in");
        let row = client
            .query_one("SELECT email FROM oidc_people WHERE id = 1", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "j***@example.com", "masked");
        // The identity's policy: agents' writes need an approval nobody
        // can give here.
        let e = client
            .batch_execute("DELETE FROM oidc_people")
            .await
            .unwrap_err();
        assert_eq!(e.code().unwrap().code(), "42501", "{e}");
        assert!(
            e.as_db_error()
                .unwrap()
                .message()
                .contains("agents-read-only"),
            "{:?}",
            e.as_db_error()
        );
    }
    // The recording names the issuer, subject, mapped user and claims.
    let rec = gw.running.recorder.clone().unwrap();
    let store = cfg.path().join("sqlgate-recordings.db");
    let id = crate::support::recording::ended_session(&rec, &store, "ci-bot").await;
    let start = {
        use sqlgate::store::Store;
        let mut s = sqlgate::store::sqlite::SqliteStore::open(&store).unwrap();
        let rows = s.rows(&id).unwrap();
        serde_json::from_str::<Value>(&rows[0].body).unwrap()
    };
    assert_eq!(start["user"], "ci-bot");
    assert_eq!(start["groups"], json!(["agents"]));
    let auth = start["auth"].as_str().unwrap();
    let login: Value = serde_json::from_str(auth.strip_prefix("oidc ").unwrap()).unwrap();
    assert_eq!(
        login,
        json!({
            "provider": "github",
            "iss": issuer.url,
            "sub": "repo:acme/app:ref:refs/heads/main",
            "matched": {"ref": "refs/heads/main", "repository_id": "123456"},
        })
    );
}

#[tokio::test]
async fn psql_logs_in_with_a_long_token_as_its_password() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, ca) = gateway(&issuer, "").await;
    let token = issuer.long_token(&github(&issuer, "123456", "refs/heads/main", 300));
    let port = gw.port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} user=github dbname=app sslmode=verify-full sslrootcert={}",
                ca.display()
            ))
            .args(["-X", "-A", "-t", "-c", "SELECT 'in as token'"])
            .env("PGPASSWORD", &token)
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
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "in as token");
}

#[tokio::test]
async fn each_bad_token_is_refused_with_its_reason() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, ca) = gateway(&issuer, "require = { environment = \"production\" }").await;
    let good = github(&issuer, "123456", "refs/heads/main", 300);
    let with = |changes: Value| {
        let mut c = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let now = good["iat"].as_i64().unwrap();
    let unpublished = issuer.add_rsa_key(false);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            issuer.token(&with(json!({"exp": now - 120}))),
            "the token has expired",
        ),
        (
            "not yet valid",
            issuer.token(&with(json!({"nbf": now + 600}))),
            "the token is not yet valid",
        ),
        (
            "issued in the future",
            issuer.token(&with(json!({"iat": now + 600}))),
            "the token was issued in the future",
        ),
        (
            "wrong audience",
            issuer.token(&with(json!({"aud": "someone-else"}))),
            "the token is for another audience",
        ),
        (
            "wrong issuer",
            issuer.token(&with(json!({"iss": "https://evil.example"}))),
            "the token is from another issuer",
        ),
        (
            "unknown kid",
            issuer.sign(&unpublished, &good),
            "the token's signing key is unknown to the issuer",
        ),
        (
            "alg none",
            issuer.unsigned(&good),
            "the token's signing algorithm is not accepted",
        ),
        (
            "HS256 keyed with the public key",
            issuer.hs256_with_public_key(&good),
            "the token's signing algorithm is not accepted",
        ),
        (
            "tampered payload",
            issuer.tampered(&good, &github(&issuer, "999999", "refs/heads/main", 300)),
            "the token's signature is invalid",
        ),
        (
            "another repository",
            issuer.token(&github(&issuer, "654321", "refs/heads/main", 300)),
            "no identity rule matched the token",
        ),
        (
            "another branch",
            issuer.token(&github(&issuer, "123456", "refs/heads/feature", 300)),
            "no identity rule matched the token",
        ),
        (
            "exp as a string",
            issuer.token(&with(json!({"exp": "99999999999"}))),
            "token login failed",
        ),
        (
            "nbf as a string",
            issuer.token(&with(json!({"nbf": "99999999999"}))),
            "token login failed",
        ),
        (
            "not a JWT",
            "not-a-token".to_owned(),
            "the token is not a well-formed JWT",
        ),
    ];
    for (what, token, reason) in cases {
        let message = refusal(&gw, &ca, &token).await;
        assert!(
            message.starts_with("token login failed: ") && message.contains(reason),
            "{what}: {message}"
        );
    }
    // RS256 named in the header, the EC key's kid: the key decides.
    let mut header_claims = good.clone();
    header_claims["sub"] = json!("confused");
    let ec = issuer.sign(&issuer.ec_kid(), &header_claims);
    let parts: Vec<&str> = ec.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(
        serde_json::to_vec(&json!({"alg": "RS256", "typ": "JWT", "kid": issuer.ec_kid()})).unwrap(),
    );
    let confused = format!("{header}.{}.{}", parts[1], parts[2]);
    let message = refusal(&gw, &ca, &confused).await;
    assert!(message.contains("algorithm is not accepted"), "{message}");
}

#[tokio::test]
async fn a_token_login_over_a_plain_connection_is_refused_before_the_token_is_sent() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, _ca) = gateway(&issuer, "").await;
    // Raw: the startup packet, then the gateway's first answer is an
    // error, not a request for the password.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    let mut body = Vec::new();
    body.extend_from_slice(&196608u32.to_be_bytes());
    for kv in ["user", "github", "database", "app"] {
        body.extend_from_slice(kv.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    tcp.write_all(&packet).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer.first(), Some(&b'E'), "{answer:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("28000"), "{text}");
    assert!(text.contains("only over TLS"), "{text}");
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_unknown_kids_refetch_at_most_once_per_interval() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let claims = github(&issuer, "123456", "refs/heads/main", 300);
    // Refetching allowed at once: a rotated key works without a restart.
    let (_a, gw_a, ca_a) = gateway(&issuer, "min_refresh_secs = 0").await;
    login(&gw_a, &ca_a, &issuer.token(&claims))
        .await
        .expect("logs in");
    let rotated = issuer.rotate();
    login(&gw_a, &ca_a, &issuer.sign(&rotated, &claims))
        .await
        .expect("the rotated key is fetched on first sight");
    // Refetching at most hourly: tokens with unknown kids cannot make the
    // gateway hammer the issuer.
    let (_b, gw_b, ca_b) = gateway(&issuer, "min_refresh_secs = 3600").await;
    login(&gw_b, &ca_b, &issuer.token(&claims))
        .await
        .expect("logs in");
    let before = issuer.jwks_fetches();
    let unknown = issuer.add_rsa_key(false);
    for _ in 0..3 {
        let message = refusal(&gw_b, &ca_b, &issuer.sign(&unknown, &claims)).await;
        assert!(message.contains("signing key is unknown"), "{message}");
    }
    assert_eq!(
        issuer.jwks_fetches(),
        before,
        "no refetch within the interval"
    );
}

#[tokio::test]
async fn cached_keys_survive_an_outage_of_the_key_endpoint() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let claims = github(&issuer, "123456", "refs/heads/main", 300);
    let (_cfg, gw, ca) = gateway(&issuer, "min_refresh_secs = 0").await;
    login(&gw, &ca, &issuer.token(&claims))
        .await
        .expect("logs in");
    issuer.set_down(true);
    let before = issuer.jwks_fetches();
    // An unknown kid tries a refetch, which fails...
    let stranger = issuer.add_rsa_key(false);
    let message = refusal(&gw, &ca, &issuer.sign(&stranger, &claims)).await;
    assert!(message.contains("signing key is unknown"), "{message}");
    assert!(issuer.jwks_fetches() > before, "a refetch was tried");
    // ...and the cached keys still log in.
    login(&gw, &ca, &issuer.token(&claims))
        .await
        .expect("cached keys outlive the outage");
    issuer.set_down(false);
    let rotated = issuer.rotate();
    login(&gw, &ca, &issuer.sign(&rotated, &claims))
        .await
        .expect("after the outage, new keys are fetched");

    // An issuer down from the start: no keys at all, and the client is
    // told so.
    let down = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    down.set_down(true);
    let (_cfg, gw, ca) = gateway(&down, "").await;
    let message = refusal(
        &gw,
        &ca,
        &down.token(&github(&down, "123456", "refs/heads/main", 300)),
    )
    .await;
    assert!(message.contains("keys are unavailable"), "{message}");
}

#[tokio::test]
async fn a_session_ends_when_its_token_expires_but_never_mid_result() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, ca) = gateway(&issuer, "leeway_secs = 0").await;
    let token = issuer.token(&github(&issuer, "123456", "refs/heads/main", 2));
    let (client, conn) = login(&gw, &ca, &token).await.expect("logs in");
    let logged_in = tokio::time::Instant::now();
    // This statement runs across the expiry: it completes, with its row.
    let running = client.query_one("SELECT 'finished' FROM pg_sleep(4)", &[]);
    // A request pipelined after the expiry, while the session is still
    // busy, is never forwarded: a client cannot keep an expired session
    // going by never letting it become idle.
    let pipelined = async {
        tokio::time::sleep_until(logged_in + std::time::Duration::from_secs(3)).await;
        client.simple_query("SELECT 'after expiry'").await
    };
    let (row, after) = tokio::join!(running, pipelined);
    let row = row.expect("the running statement completes");
    assert_eq!(row.get::<_, String>(0), "finished");
    // The session then ends with the reason, which the client reads as
    // the answer to its pipelined request.
    let e = after.expect_err("ran after the expiry");
    let db = e.as_db_error().unwrap_or_else(|| panic!("{e}"));
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "28000"));
    assert!(db.message().contains("token expired"), "{}", db.message());
    tokio::time::timeout(std::time::Duration::from_secs(10), conn)
        .await
        .expect("the session ends")
        .unwrap()
        .expect_err("ended by the gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_gets_a_token_with_sqlgate_login_and_psql_logs_in_with_it() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let corp = format!(
        "
[[oidc]]
name = \"corp\"
issuer = \"{url}\"
audiences = [\"sqlgate-cli\"]
targets = [\"app\"]
ca_file = \"{ca}\"
user_claim = \"email\"
groups_claim = \"groups\"
",
        url = issuer.url,
        ca = issuer.ca.display()
    );
    let (_cfg, gw, ca) = gateway_with(&issuer, "", &corp).await;
    issuer.approve_device_logins(issuer.claims(
        "sqlgate-cli",
        "00u1jane",
        300,
        json!({"email": "jane@example.com", "email_verified": true, "groups": ["agents"]}),
    ));
    let cache = tempfile::tempdir().unwrap();
    let login = |issuer_url: String, issuer_ca: std::path::PathBuf, cache: std::path::PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .args(["login", "--client-id", "sqlgate-cli", "--issuer"])
            .arg(issuer_url)
            .arg("--ca-file")
            .arg(issuer_ca)
            .env("XDG_CACHE_HOME", cache)
            .output()
            .unwrap()
    };
    let (url, issuer_ca, dir) = (
        issuer.url.clone(),
        issuer.ca.clone(),
        cache.path().to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || login(url, issuer_ca, dir))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("/activate") && stderr.contains("WDJB-MJHT"),
        "{stderr}"
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(issuer.token_polls(), 2, "pending once, then the token");
    // psql logs in with it, as the person the token names.
    let port = gw.port();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} user=corp dbname=app sslmode=verify-full sslrootcert={}",
                ca.display()
            ))
            .args(["-X", "-A", "-t", "-c", "SELECT 'hello ' || 'jane'"])
            .env("PGPASSWORD", &token)
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
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello jane");
    // Asked again, the cached token is reused: the issuer is not asked.
    let (url, issuer_ca, dir) = (
        issuer.url.clone(),
        issuer.ca.clone(),
        cache.path().to_owned(),
    );
    let again = tokio::task::spawn_blocking(move || login(url, issuer_ca, dir))
        .await
        .unwrap();
    assert!(again.status.success());
    assert_eq!(issuer.token_polls(), 2, "served from the cache");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg2_and_pgjdbc_log_in_with_a_long_token() {
    let issuer = Issuer::start(&tempfile::tempdir().unwrap().keep()).await;
    let (_cfg, gw, ca) = gateway(&issuer, "").await;
    let token = issuer.long_token(&github(&issuer, "123456", "refs/heads/main", 300));
    for driver in ["psycopg2", "postgresql"] {
        let tool = crate::support::token_tools::token_tool(driver, gw.port(), &ca);
        let out = crate::support::token_tools::run_with_token(tool, &token).await;
        assert_eq!(out, "in as token", "{driver}");
    }
}
