//! The example policy on the MySQL path: refusals are ERR 1227 (SQLSTATE
//! 42000) on COM_QUERY, multi-statements, executable comments and
//! COM_STMT_PREPARE, with the data unchanged; the CI user migrates; a
//! read-only identity's server session refuses writes on its own.

use std::sync::Arc;

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::gateway::TestConfig;
use crate::support::mariadb;

async fn conn(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Asserts a policy refusal and returns its message.
fn refusal(e: mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!((s.code, s.state.as_str()), (1227, "42000"), "{}", s.message);
            s.message
        }
        other => panic!("expected a server error, got {other:?}"),
    }
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first(sql).await.unwrap().unwrap()
}

#[tokio::test]
async fn agents_read_and_are_refused_everything_else() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS pol_orders; \
             CREATE TABLE pol_orders (id INT PRIMARY KEY, total INT); \
             INSERT INTO pol_orders VALUES (1, 10), (2, 20), (3, 30)",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;

    assert_eq!(count(&mut bot, "SELECT COUNT(*) FROM pol_orders").await, 3);
    let total: i64 = bot
        .exec_first("SELECT total FROM pol_orders WHERE id = ?", (2,))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(total, 20);

    let m = refusal(bot.query_drop("DELETE FROM pol_orders").await.unwrap_err());
    assert!(
        m.contains("requires approval") && m.contains("write.delete"),
        "{m}"
    );
    for sql in [
        "DROP TABLE pol_orders",
        "SELECT 1; DROP TABLE pol_orders",
        "SELECT 1 /*! ; DROP TABLE pol_orders */",
        "/*!50000 DELETE FROM pol_orders */",
        "SELECT * FROM pol_orders INTO OUTFILE '/tmp/sqlgate_pol_orders'",
        "TRUNCATE pol_orders",
    ] {
        refusal(bot.query_drop(sql).await.unwrap_err());
        // The session stays usable.
        assert_eq!(
            count(&mut bot, "SELECT COUNT(*) FROM pol_orders").await,
            3,
            "{sql}"
        );
    }
    // COM_STMT_PREPARE is judged too.
    refusal(
        bot.exec_drop("UPDATE pol_orders SET total = ? WHERE id = 1", (0,))
            .await
            .unwrap_err(),
    );
    // SQL-level PREPARE from a string: judged by what it prepares.
    refusal(
        bot.query_drop("PREPARE s FROM 'DELETE FROM pol_orders'")
            .await
            .unwrap_err(),
    );
    bot.query_drop("PREPARE s FROM 'SELECT COUNT(*) FROM pol_orders'")
        .await
        .unwrap();
    assert_eq!(count(&mut bot, "EXECUTE s").await, 3);

    assert_eq!(
        count(&mut direct, "SELECT COUNT(*) FROM pol_orders").await,
        3
    );
    assert_eq!(
        count(
            &mut direct,
            "SELECT CAST(SUM(total) AS SIGNED) FROM pol_orders"
        )
        .await,
        60
    );
}

#[tokio::test]
async fn ci_migrates_and_its_drop_is_held_for_review() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop("DROP TABLE IF EXISTS pol_migrated")
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let mut ci = conn(&gw.mysql_url("ci", "ci-pw", "app")).await;
    for sql in [
        "CREATE TABLE pol_migrated (id INT PRIMARY KEY)",
        "ALTER TABLE pol_migrated ADD COLUMN name VARCHAR(20)",
        "CREATE INDEX pol_migrated_name ON pol_migrated (name)",
        "INSERT INTO pol_migrated VALUES (1, 'one')",
    ] {
        ci.query_drop(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let m = refusal(ci.query_drop("DROP TABLE pol_migrated").await.unwrap_err());
    assert!(
        m.contains("requires approval") && m.contains("ddl.drop"),
        "{m}"
    );
    assert!(m.contains("ci-migrations"), "{m}");
    assert_eq!(
        count(&mut direct, "SELECT COUNT(*) FROM pol_migrated").await,
        1
    );
    direct.query_drop("DROP TABLE pol_migrated").await.unwrap();
}

/// Lets every statement through (a classifier that misjudged everything)
/// but keeps the policy's decision on read-only sessions.
struct Misjudging(sqlgate::hooks::MysqlHooks);

struct AllowAll(Box<dyn sqlgate_mysql::SessionHooks>);

impl sqlgate_mysql::SessionHooks for AllowAll {
    fn statement(
        &mut self,
        _: sqlgate_mysql::StatementOrigin,
        _: &[u8],
    ) -> sqlgate_mysql::hooks::Verdict<sqlgate_mysql::Masks> {
        sqlgate_mysql::hooks::Verdict::Allow(Vec::new())
    }
    fn read_only(&mut self) -> bool {
        self.0.read_only()
    }
}

impl sqlgate_mysql::Hooks for Misjudging {
    fn user(&self, name: &str) -> Option<sqlgate_mysql::UserAuth> {
        self.0.user(name)
    }
    fn route(
        &self,
        user: &sqlgate_net::identity::Identity,
        database: Option<&str>,
    ) -> Result<sqlgate_mysql::Route, sqlgate_mysql::messages::err::ClientError> {
        self.0.route(user, database)
    }
    fn session(
        &self,
        session: &sqlgate_mysql::SessionInfo,
    ) -> Box<dyn sqlgate_mysql::SessionHooks> {
        Box::new(AllowAll(self.0.session(session)))
    }
}

#[tokio::test]
async fn a_write_below_the_classifier_fails_in_a_read_only_session() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS pol_ro; CREATE TABLE pol_ro (id INT); \
             INSERT INTO pol_ro VALUES (1)",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], crate::pg::policy::VIEWERS);
    let path = config.write();
    sqlgate::install_crypto_provider();
    let cfg = sqlgate::config::Config::load(&path).unwrap();
    let running = sqlgate::server::start(&cfg).await.unwrap();
    let hooks = sqlgate::pools::mysql_hooks(&cfg, running.engine.clone()).unwrap();
    running.shutdown.cancel();
    let greeting_pool = hooks.pool("app").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let gateway = sqlgate_mysql::Gateway::new(
        Arc::new(Misjudging(hooks)),
        sqlgate_mysql::FrontendConfig {
            tls: None,
            require_tls: false,
            handshake_timeout: std::time::Duration::from_secs(5),
            limits: sqlgate_mysql::RelayLimits {
                max_statement_len: 1 << 20,
            },
            live: Default::default(),
            greeting_pool,
            caching_sha2: false,
            local_infile: false,
        },
    );
    tokio::spawn(sqlgate_mysql::server::serve(
        listener,
        gateway,
        shutdown.clone(),
        std::time::Duration::from_secs(1),
    ));
    let url = |user: &str| format!("mysql://{user}:{user}-pw@127.0.0.1:{port}/app");

    let mut viewer = conn(&url("viewer")).await;
    match viewer.query_drop("DELETE FROM pol_ro").await.unwrap_err() {
        // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1792, "{}", s.message),
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&mut viewer, "SELECT COUNT(*) FROM pol_ro").await, 1);
    // COM_RESET_CONNECTION from the client does not lift it.
    viewer.reset().await.unwrap();
    match viewer.query_drop("DELETE FROM pol_ro").await.unwrap_err() {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1792, "{}", s.message),
        other => panic!("{other:?}"),
    }

    // Reviewed writes cannot run yet: the agent's session is read-only.
    let mut bot = conn(&url("bot")).await;
    match bot
        .query_drop("UPDATE pol_ro SET id = 2")
        .await
        .unwrap_err()
    {
        mysql_async::Error::Server(s) => assert_eq!(s.code, 1792, "{}", s.message),
        other => panic!("{other:?}"),
    }
    // An identity the policy lets write is read-write.
    let mut ci = conn(&url("ci")).await;
    ci.query_drop("UPDATE pol_ro SET id = 2").await.unwrap();
    assert_eq!(
        count(&mut direct, "SELECT COUNT(*) FROM pol_ro WHERE id = 2").await,
        1
    );
    shutdown.cancel();
}

#[tokio::test]
async fn the_backend_accounts_password_hash_never_reaches_a_client() {
    let my = mariadb::shared();
    // Directly, the account sees its own hash: this is what is at stake.
    let mut direct = conn(&my.direct_url()).await;
    let grants: Vec<String> = direct.query("SHOW GRANTS").await.unwrap();
    assert!(
        grants.iter().any(|g| g.contains("PASSWORD '*")),
        "{grants:?}"
    );
    // Through the gateway, with no policy at all: refused.
    let gw = TestConfig::mysql(my).start().await;
    let mut via = conn(&gw.mysql_url("agent", crate::support::gateway::AGENT_PW, "app")).await;
    for sql in [
        "SHOW GRANTS",
        "SHOW GRANTS FOR CURRENT_USER",
        "SHOW CREATE USER CURRENT_USER",
        "SELECT User, Password, authentication_string FROM mysql.user",
        "SELECT * FROM mysql.global_priv",
    ] {
        let e = via.query_drop(sql).await.unwrap_err();
        let message = refusal(e);
        assert!(message.contains("credentials"), "{sql}: {message}");
    }
    assert_eq!(count(&mut via, "SELECT 1").await, 1);
}

#[tokio::test]
async fn a_target_reaches_only_its_own_database() {
    let my = mariadb::shared();
    // Another database the backend account may read: a second target's.
    my.sql(
        "CREATE DATABASE IF NOT EXISTS reach_other; \
         CREATE OR REPLACE TABLE reach_other.secrets (v TEXT); \
         INSERT INTO reach_other.secrets VALUES ('zqxreach7'); \
         GRANT ALL ON reach_other.* TO app_owner@'%'",
    );
    let mut direct = conn(&my.direct_url()).await;
    let v: Option<String> = direct
        .query_first("SELECT v FROM reach_other.secrets")
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("zqxreach7"), "the account can read it");

    let gw = TestConfig::mysql(my).start().await;
    let mut via = conn(&gw.mysql_url("agent", crate::support::gateway::AGENT_PW, "app")).await;
    for sql in [
        "SELECT v FROM reach_other.secrets",
        "SELECT 1 FROM dual WHERE EXISTS (SELECT v FROM `reach_other`.`secrets`)",
        "USE reach_other",
        "USE mysql",
        "SHOW TABLES FROM reach_other",
        "SHOW CREATE TABLE reach_other.secrets",
        "PREPARE s FROM 'SELECT v FROM reach_other.secrets'",
        "EXECUTE IMMEDIATE 'SELECT v FROM reach_other.secrets'",
        "SELECT * FROM performance_schema.threads",
    ] {
        let message = refusal(via.query_drop(sql).await.unwrap_err());
        assert!(message.contains("outside target"), "{sql}: {message}");
        // The same as a long text (judged off the runtime's thread), after
        // a short one the session remembers.
        assert_eq!(count(&mut via, "SELECT 1").await, 1);
        let long = format!("{sql} /* {} */", "x".repeat(20 * 1024));
        let message = refusal(via.query_drop(&long).await.unwrap_err());
        assert!(message.contains("outside target"), "long {sql}: {message}");
    }
    // COM_INIT_DB is judged as the USE it is.
    let mut raw = super::relay::raw_session(gw.mysql_port()).await;
    let mut init = Vec::new();
    sqlgate_mysql::packet::encode(0, b"\x02reach_other", &mut init);
    tokio::io::AsyncWriteExt::write_all(&mut raw, &init)
        .await
        .unwrap();
    let answer = super::relay::until(&mut raw, b"outside target").await;
    assert_eq!(answer[0][0], 0xff, "ERR");
    // Its own database and the system schemas stay readable.
    assert_eq!(
        count(
            &mut via,
            "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'app'"
        )
        .await,
        1
    );
    let db: Option<String> = via.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db.as_deref(), Some("app"));
}

#[tokio::test]
async fn an_agent_cannot_leave_a_prepared_xa_branch_and_may_unlock() {
    let my = mariadb::shared();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    bot.query_drop("XA START 'pol-xa'").await.unwrap();
    bot.query_drop("XA END 'pol-xa'").await.unwrap();
    // A prepared branch would outlive the session: admin, as its
    // COMMIT/ROLLBACK/RECOVER and PostgreSQL's PREPARE TRANSACTION are.
    let message = refusal(bot.query_drop("XA PREPARE 'pol-xa'").await.unwrap_err());
    assert!(message.contains("admin.maintenance"), "{message}");
    // Releasing table locks is harmless (mysqldump sends it).
    bot.query_drop("UNLOCK TABLES").await.unwrap();
}
