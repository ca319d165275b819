//! Approvals on PostgreSQL, what surrounds a hold: the reach the
//! approver sees (a DELETE's planner estimate, a DDL's lock), webhooks,
//! `/readyz`, and a migration tool waiting for its destructive step.

use crate::support::approvals::{self, approve, deny, pending, rows, table};
use crate::support::gateway::{connect, TestConfig, AGENT_PW};
use crate::support::pg;

/// The approver sees how far a DELETE reaches, from the planner and
/// without running it: 10,000 of 1,000,000 rows estimated within the
/// planner's usual error.
#[tokio::test]
async fn the_approver_sees_the_planners_estimate_of_the_rows_a_delete_touches() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS blast_big; CREATE TABLE blast_big (id int primary key, grp int); \
             INSERT INTO blast_big SELECT i, i % 100 FROM generate_series(1, 1000000) i; \
             ANALYZE blast_big; GRANT ALL ON blast_big TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let held = tokio::spawn(async move {
        client
            .batch_execute("DELETE FROM blast_big WHERE grp = 7")
            .await
    });
    let id = pending(&gw).await;
    let approvals = gw.running.approvals.clone().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let reach = loop {
        if let Some(r) = approvals.get(id).unwrap().ask.statements[0].reach.clone() {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "no estimate");
        tokio::task::yield_now().await;
    };
    let n: u64 = reach
        .strip_prefix("about ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{reach}"));
    assert!((5_000..=20_000).contains(&n), "{reach}");
    assert!(
        reach.ends_with("rows changed (planner estimate)"),
        "{reach}"
    );
    // Nothing ran to estimate it.
    assert_eq!(rows(&direct, "blast_big").await, 1_000_000);
    assert_eq!(deny(&gw, id, "alice", "too many").await.0, 200);
    assert!(held.await.unwrap().is_err());
    assert_eq!(rows(&direct, "blast_big").await, 1_000_000);
    direct.batch_execute("DROP TABLE blast_big").await.unwrap();
}

/// A held DDL shows the lock PostgreSQL takes for it and the size of its
/// table: ACCESS EXCLUSIVE for a DROP, SHARE for a plain CREATE INDEX.
#[tokio::test]
async fn a_held_ddl_shows_its_lock_and_its_table() {
    let server = pg::shared();
    let direct = table(server, "held_ddl").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    std::fs::write(
        cfg.path().join("review2.toml"),
        "[[rule]]\nname = \"ddl\"\nusers = [\"agent\"]\ntargets = [\"*\"]\n\
         review = [\"ddl\"]\napprovers = [\"dba\"]\n",
    )
    .unwrap();
    cfg.toml = cfg.toml.replace(
        "files = [\"review.toml\"]",
        "files = [\"review.toml\", \"review2.toml\"]",
    );
    let gw = cfg.start().await;
    let approvals = gw.running.approvals.clone().unwrap();
    for (sql, lock) in [
        (
            "DROP TABLE held_ddl",
            "takes ACCESS EXCLUSIVE (every read and write of the table waits)",
        ),
        (
            "CREATE INDEX held_ddl_v ON held_ddl (v)",
            "takes SHARE (writes to the table wait)",
        ),
    ] {
        let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
        let held = tokio::spawn(async move { client.batch_execute(sql).await });
        let id = pending(&gw).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let reach = loop {
            if let Some(r) = approvals.get(id).unwrap().ask.statements[0].reach.clone() {
                break r;
            }
            assert!(std::time::Instant::now() < deadline, "no reach");
            tokio::task::yield_now().await;
        };
        assert!(reach.starts_with(lock), "{sql}: {reach}");
        assert!(reach.contains("the table holds about"), "{sql}: {reach}");
        assert_eq!(deny(&gw, id, "alice", "not now").await.0, 200);
        assert!(held.await.unwrap().is_err());
    }
    assert_eq!(rows(&direct, "held_ddl").await, 3);
}

/// `/readyz`: 200 while every target accepts connections and the store
/// takes records; 503 naming a target whose server does not answer.
#[tokio::test]
async fn readyz_names_a_target_that_does_not_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = pg::shared();
    let get = |addr: std::net::SocketAddr| async move {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /readyz HTTP/1.1\r\nHost: sqlgate\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out
    };
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let gw = cfg.start().await;
    let ready = get(gw.running.admin_addr.unwrap()).await;
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.ends_with("ready\n"),
        "{ready}"
    );
    // A second target whose server is down.
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    cfg.target("down", pg::free_port(), "app_owner", Some("app.pw"), "");
    let gw = cfg.start().await;
    let ready = get(gw.running.admin_addr.unwrap()).await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("target down:"), "{ready}");
    assert!(!ready.contains("target app:"), "{ready}");
}

/// An Alembic migration whose destructive step a rule reviews waits, in
/// its transaction, until approved, then commits.
#[tokio::test]
async fn an_alembic_migration_waits_for_its_drop_to_be_approved() {
    use crate::support::python;
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS mig_people, mig_old; \
             CREATE TABLE mig_people (id int primary key); CREATE TABLE mig_old (id int); \
             ALTER TABLE mig_people OWNER TO app_owner; ALTER TABLE mig_old OWNER TO app_owner",
        )
        .await
        .unwrap();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    std::fs::write(
        cfg.path().join("review.toml"),
        "[[rule]]\nname = \"migrations\"\nusers = [\"agent\"]\ntargets = [\"*\"]\n\
         allow = [\"read\", \"write\", \"ddl\", \"tx\", \"session\"]\nreview = [\"ddl.drop\"]\n\
         approvers = [\"dba\"]\n",
    )
    .unwrap();
    let gw = cfg.start().await;
    let url = format!(
        "postgresql+psycopg2://agent:{AGENT_PW}@127.0.0.1:{}/app",
        gw.port()
    );
    let mut migration =
        tokio::task::spawn_blocking(move || python::run("alembic_migrate.py", &[&url]));
    let id = tokio::select! {
        id = pending(&gw) => id,
        out = &mut migration => {
            let out = out.unwrap();
            panic!(
                "the migration ended unheld: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    let request = gw.running.approvals.as_ref().unwrap().get(id).unwrap();
    assert!(
        request.ask.statements[0]
            .text
            .contains("DROP TABLE mig_old"),
        "{:?}",
        request.ask.statements
    );
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    let out = migration.await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("migrated"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: i64 = direct
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'mig_old'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the drop ran");
    direct
        .batch_execute("SELECT nick FROM mig_people; DROP TABLE mig_people")
        .await
        .unwrap();
}

/// `[[notify]]` webhooks hear of each request made and ended, as JSON
/// and as a Slack message; a refused delivery is tried again.
#[tokio::test]
async fn webhooks_hear_of_each_request_and_retry_a_refused_delivery() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel::<(String, serde_json::Value)>();
    tokio::spawn(async move {
        for n in 1.. {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let (head, body) = loop {
                let mut chunk = [0u8; 4096];
                let got = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..got]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.to_owned(), body.to_owned());
                    }
                }
                assert!(got > 0, "the webhook request ended early");
            };
            let path = head.split(' ').nth(1).unwrap().to_owned();
            // The first delivery is refused: it must be tried again.
            let status = if n == 1 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            s.write_all(
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
            let _ = tx.send((path, serde_json::from_str(&body).unwrap()));
        }
    });
    let server = pg::shared();
    let direct = table(server, "held_hook").await;
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    cfg.toml.push_str(&format!(
        "\n[[notify]]\nurl = \"http://{hook}/json\"\n\n[[notify]]\nurl = \"http://{hook}/slack\"\nformat = \"slack\"\n"
    ));
    let gw = cfg.start().await;
    let client = connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
    let held = tokio::spawn(async move {
        client
            .batch_execute("DELETE FROM held_hook WHERE id = 3")
            .await
    });
    let id = pending(&gw).await;
    let (path, first) = heard.recv().await.unwrap();
    assert_eq!(
        (path.as_str(), &first["event"]),
        ("/json", &"created".into())
    );
    let (path, again) = heard.recv().await.unwrap();
    assert_eq!(path, "/json", "the refused note is tried again");
    assert_eq!(again, first);
    assert_eq!(again["request"]["id"], id);
    assert_eq!(
        again["request"]["statements"][0]["text"],
        "DELETE FROM held_hook WHERE id = 3"
    );
    let (path, slack) = heard.recv().await.unwrap();
    assert_eq!(path, "/slack");
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("request #{id} by agent"))
            && text.contains("DELETE FROM held_hook WHERE id = 3")
            && text.contains(&format!("sqlgate approvals approve {id}")),
        "{text}"
    );
    assert_eq!(approve(&gw, id, "alice").await.0, 200);
    held.await.unwrap().unwrap();
    let (path, decided) = heard.recv().await.unwrap();
    assert_eq!(path, "/json");
    assert_eq!(decided["event"], "decided");
    assert_eq!(decided["request"]["state"]["state"], "approved");
    let (path, slack) = heard.recv().await.unwrap();
    assert_eq!(path, "/slack");
    assert!(
        slack["text"].as_str().unwrap().ends_with("approved"),
        "{slack}"
    );
    assert_eq!(rows(&direct, "held_hook").await, 2);
}

/// `[admin] tls_cert` / `tls_key`: the admin plane speaks HTTPS only; the
/// CLI reaches it with the certificate's CA in `SQLGATE_ADMIN_CA`, and a
/// plain HTTP request gets no answer.
#[tokio::test]
async fn the_admin_listener_speaks_https_when_given_a_certificate() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = pg::shared();
    let mut cfg = TestConfig::new(server);
    approvals::configure(&mut cfg, "");
    let ca = cfg.with_tls("admin", &["localhost"]);
    let gw = cfg.start().await;
    let port = gw.running.admin_addr.unwrap().port();
    let cli = |ca: Option<std::path::PathBuf>| {
        let url = format!("https://localhost:{port}");
        tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"));
            c.args(["approvals", "list", "--admin-url", &url])
                .env("SQLGATE_ADMIN_TOKEN", approvals::token("carol"))
                .env_remove("SQLGATE_ADMIN_CA");
            if let Some(ca) = ca {
                c.env("SQLGATE_ADMIN_CA", ca);
            }
            c.output().unwrap()
        })
    };
    let out = cli(Some(ca)).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("requester"));
    // Without the CA the certificate is not trusted.
    let out = cli(None).await.unwrap();
    assert!(!out.status.success(), "{out:?}");
    // Plain HTTP: no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: sqlgate\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

/// A startup setting a rule reviews cannot wait for its approval during
/// the login (the client could be told nothing): the login is refused,
/// no request is made, and the setting never reaches the server.
/// Before the verdict seam the hold was ignored there and the setting
/// ran unapproved.
#[tokio::test]
async fn a_reviewed_startup_setting_refuses_the_login_and_never_runs() {
    let mut cfg = TestConfig::new(pg::shared());
    approvals::configure(&mut cfg, "");
    let rules = cfg.path().join("review.toml");
    let reviewed = std::fs::read_to_string(&rules)
        .unwrap()
        .replace("review = [\"write\"]", "review = [\"write\", \"admin\"]");
    std::fs::write(&rules, reviewed).unwrap();
    let gw = cfg.start().await;
    let refused = tokio_postgres::connect(
        &format!(
            "{} options='-c no_such_setting_x=1'",
            gw.conn_str("agent", AGENT_PW, "app")
        ),
        tokio_postgres::NoTls,
    )
    .await
    .err()
    .expect("the login is refused");
    let db = refused.as_db_error().expect("a FATAL from the gateway");
    assert_eq!((db.severity(), db.code().code()), ("FATAL", "42501"));
    assert!(db.message().contains("need approval"), "{}", db.message());
    // Refused before any request is made: approvers are not asked.
    assert!(gw.running.approvals.clone().unwrap().list().is_empty());
    // Sessions without the setting log in.
    connect(&gw.conn_str("agent", AGENT_PW, "app")).await;
}
