//! Cost of a login to the gateway: a token login (the issuer's keys
//! cached: parse, RS256 or ES256 signature, claims, identity rules) against
//! a SCRAM-SHA-256 login (the gateway's two steps: server-first and the
//! proof check). The client's share is measured too: SCRAM makes the
//! client derive its key (4,096 PBKDF2 rounds), a token costs the client
//! nothing but sending it. The issuer is the tests' real HTTPS issuer
//! (its keys are fetched once, before measuring).
//!
//! `login_e2e`: whole logins through an in-process gateway over TLS
//! (connect, TLS, authentication, startup, ReadyForQuery) to the machine's
//! PostgreSQL at 127.0.0.1:5432 (trust, database `test`), token against
//! SCRAM, tokio-postgres as the client.

#[path = "../tests/support/issuer.rs"]
#[allow(dead_code)]
mod issuer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use sqlgate::oidc::config::{IdentityRule, Provider};
use sqlgate::oidc::Providers;
use sqlgate_postgres::ScramSecret;

fn provider(issuer: &issuer::Issuer) -> Provider {
    Provider {
        name: "github".to_owned(),
        issuer: issuer.url.clone(),
        audiences: vec!["sqlgate".to_owned()],
        algorithms: vec![
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::ES256,
        ],
        targets: vec!["app".to_owned()],
        default_target: None,
        jwks_uri: None,
        ca_file: Some(issuer.ca.clone()),
        leeway: Duration::from_secs(30),
        end_at_expiry: true,
        refresh: Duration::from_secs(3600),
        min_refresh: Duration::from_secs(60),
        keys_max_age: Duration::from_secs(86_400),
        user_claim: None,
        groups_claim: None,
        groups_allowed: None,
        require: vec![],
        identities: vec![IdentityRule {
            when: vec![
                ("repository_id".to_owned(), vec!["123456".to_owned()]),
                ("ref".to_owned(), vec!["refs/heads/main".to_owned()]),
            ],
            user: "ci-migrate".to_owned(),
            groups: vec!["ci".to_owned()],
            targets: vec!["app".to_owned()],
        }],
    }
}

fn logins(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let issuer = rt.block_on(issuer::Issuer::start(dir.path()));
    let providers = Arc::new(Providers::new(&[provider(&issuer)], &[]).unwrap());
    let claims = issuer.claims(
        "sqlgate",
        "repo:acme/app:ref:refs/heads/main",
        3600,
        serde_json::json!({"repository_id": "123456", "ref": "refs/heads/main"}),
    );
    let rs256 = issuer.token(&claims);
    let es256 = issuer.sign(&issuer.ec_kid(), &claims);
    // The first verification fetches the keys; everything after is cached.
    rt.block_on(providers.verify("github", &rs256)).unwrap();

    let mut g = c.benchmark_group("login");
    g.bench_function("token RS256, gateway", |b| {
        b.iter(|| rt.block_on(providers.verify("github", &rs256)).unwrap())
    });
    g.bench_function("token ES256, gateway", |b| {
        b.iter(|| rt.block_on(providers.verify("github", &es256)).unwrap())
    });
    let secret = ScramSecret::from_password(b"agent-pw");
    g.bench_function("SCRAM-SHA-256, gateway", |b| {
        b.iter_custom(|n| {
            let mut gateway = Duration::ZERO;
            for _ in 0..n {
                let mut client = ScramSha256::new(b"agent-pw", ChannelBinding::unsupported());
                let t = Instant::now();
                let (state, server_first) = secret.server_first(client.message()).unwrap();
                gateway += t.elapsed();
                client.update(&server_first).unwrap();
                let t = Instant::now();
                let server_final = state.finish(client.message()).unwrap();
                gateway += t.elapsed();
                client.finish(&server_final).unwrap();
            }
            gateway
        })
    });
    g.bench_function("SCRAM-SHA-256, client and gateway", |b| {
        b.iter(|| {
            let mut client = ScramSha256::new(b"agent-pw", ChannelBinding::unsupported());
            let (state, server_first) = secret.server_first(client.message()).unwrap();
            client.update(&server_first).unwrap();
            let server_final = state.finish(client.message()).unwrap();
            client.finish(&server_final).unwrap();
        })
    });
    g.finish();
}

fn e2e(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    sqlgate::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let issuer = rt.block_on(issuer::Issuer::start(&dir.path().join("issuer")));
    let names = vec!["127.0.0.1".to_owned()];
    let (crt, key) = sqlgate::certs::self_signed(&dir.path().join("tls"), &names).unwrap();
    std::fs::write(dir.path().join("agent.pw"), "agent-pw\n").unwrap();
    let text = format!(
        r#"
[postgres]
listen = "127.0.0.1:0"
tls_cert = "{crt}"
tls_key = "{key}"

[recording]
enabled = false

[[target]]
name = "test"
kind = "postgres"
host = "127.0.0.1"
port = 5432
database = "test"
user = "postgres"

[[user]]
name = "agent"
password_file = "agent.pw"
targets = ["test"]

[[oidc]]
name = "github"
issuer = "{iss}"
audiences = ["sqlgate"]
targets = ["test"]
ca_file = "{ca}"

[[oidc.identity]]
when = {{ repository_id = "123456" }}
user = "ci-migrate"
"#,
        crt = crt.display(),
        key = key.display(),
        iss = issuer.url,
        ca = issuer.ca.display(),
    );
    let path = dir.path().join("sqlgate.toml");
    std::fs::write(&path, text).unwrap();
    let config = sqlgate::config::Config::load(&path).unwrap();
    let running = rt.block_on(sqlgate::server::start(&config)).unwrap();
    let port = running.postgres_addr.unwrap().port();
    let token = issuer.token(&issuer.claims(
        "sqlgate",
        "repo:acme/app:ref:refs/heads/main",
        3600,
        serde_json::json!({"repository_id": "123456"}),
    ));
    let tls = {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(&crt).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        tokio_postgres_rustls::MakeRustlsConnect::new(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    };
    let connect = |user: &str, password: &str| {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host("127.0.0.1")
            .port(port)
            .user(user)
            .password(password)
            .dbname("test")
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        let tls = tls.clone();
        async move {
            let (client, conn) = cfg.connect(tls).await.unwrap();
            let task = tokio::spawn(conn);
            drop(client);
            let _ = task.await;
        }
    };
    // Warm: keys fetched, the pool's server connection open.
    rt.block_on(connect("github", &token));
    rt.block_on(connect("agent", "agent-pw"));
    let mut g = c.benchmark_group("login_e2e");
    g.bench_function("token over TLS", |b| {
        b.iter(|| rt.block_on(connect("github", &token)))
    });
    g.bench_function("SCRAM over TLS", |b| {
        b.iter(|| rt.block_on(connect("agent", "agent-pw")))
    });
    g.finish();
    running.shutdown.cancel();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = logins, e2e
}
criterion_main!(benches);
