//! Client authentication against gateway users, routing to targets, and
//! backend authentication with gateway-held credentials.

use crate::support::gateway::{connect, TestConfig, AGENT_PW};
use crate::support::pg::{self, MD5_OWNER_PW};

async fn connect_err(conn_str: &str) -> tokio_postgres::Error {
    match tokio_postgres::connect(conn_str, tokio_postgres::NoTls).await {
        Ok(_) => panic!("{conn_str} should be refused"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_unknown_target_are_fatal() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let e = connect_err(&gw.conn_str("agent", "wrong", "app")).await;
    let db = e.as_db_error().expect("a server error");
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "28P01"));
    assert_eq!(
        db.message(),
        "password authentication failed for user \"agent\""
    );
    // An unknown user gets the very same answer (no user enumeration).
    let e = connect_err(&gw.conn_str("nobody", "x", "app")).await;
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "28P01"));
    assert_eq!(
        db.message(),
        "password authentication failed for user \"nobody\""
    );
    let e = connect_err(&gw.conn_str("agent", AGENT_PW, "nope")).await;
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "3D000"));
    assert_eq!(db.message(), "target \"nope\" does not exist");
    assert!(
        db.hint().unwrap().contains("app"),
        "the hint lists the user's targets"
    );
}

#[tokio::test]
async fn a_user_reaches_only_their_targets() {
    let pg = pg::shared();
    let mut cfg = TestConfig::new(pg);
    cfg.target("other", pg.port, "app_owner", Some("app.pw"), "");
    let gw = cfg.start().await;
    let e = connect_err(&gw.conn_str("agent", AGENT_PW, "other")).await;
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "42501"));
    assert_eq!(db.message(), "user \"agent\" may not use target \"other\"");
}

#[tokio::test]
async fn backend_md5_trust_and_scram_with_gateway_credentials() {
    let pg = pg::shared();
    let mut cfg = TestConfig::new(pg);
    cfg.secret("md5.pw", MD5_OWNER_PW);
    cfg.target("via_md5", pg.port, "md5_owner", Some("md5.pw"), "");
    cfg.target("via_trust", pg.port, "trust_owner", None, "");
    cfg.user("ops", "agent.pw", &["*"], "");
    let gw = cfg.start().await;
    for (target, server_user) in [
        ("app", "app_owner"),
        ("via_md5", "md5_owner"),
        ("via_trust", "trust_owner"),
    ] {
        let c = connect(&gw.conn_str("ops", AGENT_PW, target)).await;
        let user: String = c
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(user, server_user, "target {target}");
    }
    let method: String = pg.psql(
        "app",
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'md5_owner'",
    );
    assert!(
        method.starts_with("md5"),
        "md5_owner really has an md5 password"
    );
}

#[tokio::test]
async fn refused_gateway_credentials_never_reach_the_client() {
    let pg = pg::shared();
    let mut cfg = TestConfig::new(pg);
    cfg.secret("bad.pw", "definitely-wrong");
    cfg.target("broken", pg.port, "app_owner", Some("bad.pw"), "");
    cfg.user("ops", "agent.pw", &["*"], "");
    let gw = cfg.start().await;
    let e = connect_err(&gw.conn_str("ops", AGENT_PW, "broken")).await;
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "08001"));
    let all = format!("{} {:?} {:?}", db.message(), db.detail(), db.hint());
    assert!(all.contains("target \"broken\" is unavailable"), "{all}");
    assert!(
        !all.contains("app_owner") && !all.contains("definitely-wrong"),
        "{all}"
    );
}

#[tokio::test]
async fn cleartext_password_users_are_refused_without_tls() {
    let pg = pg::shared();
    let mut cfg = TestConfig::new(pg);
    cfg.user("tokenish", "agent.pw", &["app"], "auth = \"password\"");
    let gw = cfg.start().await;
    let e = connect_err(&gw.conn_str("tokenish", AGENT_PW, "app")).await;
    let db = e.as_db_error().unwrap();
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "28000"));
    assert!(db.message().contains("only over TLS"), "{}", db.message());
}

#[tokio::test]
async fn startup_options_are_applied_and_bad_ones_refused() {
    let gw = TestConfig::new(pg::shared()).start().await;
    let c = connect(&format!(
        "{} application_name=opt-test options='-c search_path=pg_catalog,public -c statement_timeout=1234'",
        gw.conn_str("agent", AGENT_PW, "app")
    ))
    .await;
    let row = c
        .query_one("SELECT current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')", &[])
        .await
        .unwrap();
    // kept as the client wrote it, exactly as PostgreSQL does for startup options
    assert_eq!(row.get::<_, &str>(0), "pg_catalog,public");
    assert_eq!(row.get::<_, &str>(1), "1234ms");
    assert_eq!(row.get::<_, &str>(2), "opt-test");
    let e = connect_err(&format!(
        "{} options='-c no_such_setting_x=1'",
        gw.conn_str("agent", AGENT_PW, "app")
    ))
    .await;
    let db = e.as_db_error().unwrap();
    assert_eq!(
        (db.severity(), db.code().code()),
        ("FATAL", "42704"),
        "{}",
        db.message()
    );
}

#[tokio::test]
async fn backend_tls_with_a_verified_certificate() {
    sqlgate::install_crypto_provider();
    let certs = tempfile::tempdir().unwrap();
    let (crt, key) =
        sqlgate::certs::self_signed(certs.path(), &["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let pg = pg::PgServer::start(pg::PgOptions {
        tls: Some((crt.clone(), key)),
    });
    let mut cfg = TestConfig::new(&pg);
    let extra = format!("tls = \"verify-full\"\ntls_ca_file = \"{}\"", crt.display());
    cfg.target("secure", pg.port, "app_owner", Some("app.pw"), &extra);
    cfg.target(
        "encrypted",
        pg.port,
        "app_owner",
        Some("app.pw"),
        "tls = \"require\"",
    );
    cfg.user("ops", "agent.pw", &["*"], "");
    // The recording store on the same server, verified the same way.
    cfg.secret("store.pw", pg::SUPERUSER_PW);
    cfg.toml.push_str(&format!(
        "\n[store]\nurl = \"postgres://postgres@localhost:{}/postgres\"\n\
         password_file = \"store.pw\"\ntls = \"verify-full\"\ntls_ca_file = \"{}\"\n",
        pg.port,
        crt.display()
    ));
    let gw = cfg.start().await;
    let recorder_ssl = pg.psql(
        "postgres",
        "SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE application_name = 'sqlgate-recorder'",
    );
    assert_eq!(recorder_ssl, "t", "the store's connection is encrypted");
    // verify-full and require are encrypted; the plain target is not.
    for (target, encrypted) in [("secure", true), ("encrypted", true), ("app", false)] {
        let c = connect(&gw.conn_str("ops", AGENT_PW, target)).await;
        let ssl: bool = c
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(ssl, encrypted, "target {target}");
    }
}
