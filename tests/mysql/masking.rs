//! Masking on the MySQL path: text and binary protocol, multi-results.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts};

use crate::support::gateway::TestConfig;
use crate::support::mariadb;

const MASKS: &str = r#"
[[mask]]
name = "customer-pii"
columns = ["app.mask_customers.ssn", "*.mask_customers.email"]
function = { keep_last = 4 }
except_users = ["ci"]
"#;

async fn conn(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).unwrap()).await.unwrap()
}

#[tokio::test]
async fn masked_values_never_reach_a_masked_identity() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS mask_customers; \
             CREATE TABLE mask_customers (id INT, name TEXT, email TEXT, ssn TEXT); \
             INSERT INTO mask_customers VALUES (1, 'Ann', 'ann@example.com', '900-11-2222')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], MASKS);
    let gw = config.start().await;
    gw.catalog_has("mask_customers").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    let name: String = bot
        .query_first("SELECT name FROM mask_customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(name, "Ann");
    // Masked on the wire (keep_last = 4 on plain references; derived
    // values redacted), text protocol and binary (prepared) protocol.
    for (sql, expected) in [
        ("SELECT ssn FROM mask_customers", vec!["***-**-2222"]),
        (
            "SELECT id, name, email, ssn FROM mask_customers",
            vec!["1", "Ann", "***@*******.com", "***-**-2222"],
        ),
        ("SELECT CONCAT(email, '') FROM mask_customers", vec!["***"]),
        ("SELECT (SELECT MAX(ssn) FROM mask_customers)", vec!["***"]),
        (
            "SELECT name FROM mask_customers UNION ALL SELECT ssn FROM mask_customers",
            vec!["***", "***"],
        ),
        (
            "SELECT 1; SELECT ssn FROM mask_customers",
            vec!["1", "***-**-2222"],
        ),
    ] {
        let mut got = Vec::new();
        let mut result = bot
            .query_iter(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        while !result.is_empty() {
            for row in result.collect::<mysql_async::Row>().await.unwrap() {
                for i in 0..row.len() {
                    got.push(row.get::<String, _>(i).unwrap());
                }
            }
        }
        assert_eq!(got, expected, "text: {sql}");
        if sql.contains(';') {
            continue;
        }
        let rows: Vec<mysql_async::Row> = bot.exec(sql, ()).await.unwrap();
        let got: Vec<String> = rows
            .iter()
            .flat_map(|r| {
                (0..r.len()).map(move |i| match r.as_ref(i).unwrap() {
                    mysql_async::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    other => other.as_sql(true).trim_matches('\'').to_owned(),
                })
            })
            .collect();
        assert_eq!(got, expected, "binary: {sql}");
    }
    match bot
        .query_drop("SELECT name FROM mask_customers WHERE ssn LIKE '900%'")
        .await
        .unwrap_err()
    {
        mysql_async::Error::Server(s) => {
            assert_eq!((s.code, s.state.as_str()), (1142, "42000"), "{}", s.message);
            assert!(s.message.contains("customer-pii"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
    // `sqlgate explain` reads the MySQL target's catalog for the plan.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"))
        .args(["explain", "--user", "bot", "--target", "app", "--config"])
        .arg(config.write())
        .arg("SELECT name, CONCAT(email, '') AS e, ssn FROM mask_customers")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "name               clear",
        "e                  masked by rule \"customer-pii\" with redact: computed from app.mask_customers.email",
        "ssn                masked by rule \"customer-pii\" with keep_last = 4: a plain reference to app.mask_customers.ssn",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }

    let mut ci = conn(&gw.mysql_url("ci", "ci-pw", "app")).await;
    let ssn: String = ci
        .query_first("SELECT ssn FROM mask_customers")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ssn, "900-11-2222");
    direct
        .query_drop("DROP TABLE mask_customers")
        .await
        .unwrap();
}

/// MariaDB runs the statement prepared last for the id 0xFFFFFFFF (so a
/// client can pipeline prepare and execute). The gateway must follow every
/// prepare, masked or not, to know which one that is: this leaked the
/// clear value before.
#[tokio::test]
async fn the_last_prepared_statement_id_is_masked_too() {
    use super::relay::{raw_login, until};
    use tokio::io::AsyncWriteExt;
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS lastprep_customers; \
             CREATE TABLE lastprep_customers (id INT, name TEXT, email TEXT); \
             INSERT INTO lastprep_customers VALUES (1, 'Ann', 'ann@example.com')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        r#"
[[mask]]
columns = ["*.lastprep_customers.email"]
function = "redact"
"#,
    );
    let gw = config.start().await;
    gw.catalog_has("lastprep_customers").await;
    let command = |payload: Vec<u8>, out: &mut Vec<u8>| {
        sqlgate_mysql::packet::encode(0, &payload, out);
    };
    let execute_last = [
        &[0x17][..],
        &u32::MAX.to_le_bytes(),
        &[0],
        &1u32.to_le_bytes(),
    ]
    .concat();
    let mut out = Vec::new();
    // Masked, then clear, then masked again: each execute of the id runs
    // the statement prepared just before it.
    for sql in [
        "SELECT email FROM lastprep_customers",
        "SELECT name FROM lastprep_customers",
        "SELECT id, email FROM lastprep_customers",
    ] {
        command([&[0x16][..], sql.as_bytes()].concat(), &mut out);
        command(execute_last.clone(), &mut out);
    }
    command(b"\x03SELECT 'end-of-script'".to_vec(), &mut out);
    let mut s = raw_login(gw.mysql_port(), "bot", "bot-pw", "app").await;
    s.write_all(&out).await.unwrap();
    let answers = until(&mut s, b"end-of-script").await;
    let all: Vec<u8> = answers.concat();
    let seen = |needle: &[u8]| all.windows(needle.len()).filter(|w| *w == needle).count();
    assert_eq!(seen(b"example"), 0, "a clear email went out");
    assert_eq!(seen(b"\x03***"), 2, "both masked executes answered masked");
    assert_eq!(seen(b"Ann"), 1, "the clear statement ran clear");
    direct
        .query_drop("DROP TABLE lastprep_customers")
        .await
        .unwrap();
}

/// Traffic the relay must not misread in a masking session: an empty
/// command packet (its "command byte" would be the next packet's header)
/// and a statement command too short to hold a statement id end the
/// session; result sets beyond a text's statements (an `EXECUTE` of a
/// prepared `CALL`) are masked fail-closed. Each of these returned the
/// clear value before (found by review).
#[tokio::test]
async fn odd_statement_traffic_never_unmasks() {
    use super::relay::{raw_login, until};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS odd_customers; DROP PROCEDURE IF EXISTS odd_two_sets; \
             CREATE TABLE odd_customers (id INT, email TEXT); \
             INSERT INTO odd_customers VALUES (1, 'ann@example.com'); \
             CREATE PROCEDURE odd_two_sets() BEGIN SELECT 1; SELECT email FROM odd_customers; END",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        r#"
[[rule]]
name = "ci-calls"
users = ["ci"]
targets = ["*"]
allow = ["code"]

[[mask]]
columns = ["*.odd_customers.email"]
function = "redact"
"#,
    );
    let gw = config.start().await;
    gw.catalog_has("odd_customers").await;
    let port = gw.mysql_port();
    let packet = |payload: &[u8]| {
        let mut out = Vec::new();
        sqlgate_mysql::packet::encode(0, payload, &mut out);
        out
    };
    let ends = |mut s: tokio::net::TcpStream, bytes: Vec<u8>| async move {
        s.write_all(&bytes).await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .expect("the gateway ends the session")
            .ok();
        rest
    };

    // An empty command packet, then what would be read as COM_STMT_CLOSE.
    let s = raw_login(port, "bot", "bot-pw", "app").await;
    let rest = ends(s, [&[0u8, 0, 0, 0][..], &[0x19, 1, 0, 0, 0x03]].concat()).await;
    assert!(!rest.windows(7).any(|w| w == b"example"));

    // A COM_STMT_CLOSE without its statement id, whose "id" would come
    // from the next packet's header.
    let mut s = raw_login(port, "bot", "bot-pw", "app").await;
    s.write_all(&packet(b"\x16SELECT email FROM odd_customers"))
        .await
        .unwrap();
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await.unwrap();
    let mut ok = vec![0u8; hdr[0] as usize];
    s.read_exact(&mut ok).await.unwrap();
    let id = u32::from_le_bytes([ok[1], ok[2], ok[3], ok[4]]);
    let execute = [&[0x17][..], &id.to_le_bytes(), &[0], &1u32.to_le_bytes()].concat();
    let rest = ends(
        s,
        [packet(&[0x19]), packet(b"\x03DO 1  "), packet(&execute)].concat(),
    )
    .await;
    assert!(
        !rest.windows(7).any(|w| w == b"example"),
        "{}",
        String::from_utf8_lossy(&rest)
    );

    // A statement id the session never prepared is refused by the gateway
    // itself (were its idea of ids ever to differ from the server's, the
    // results would have no mask).
    let mut s = raw_login(port, "bot", "bot-pw", "app").await;
    let unknown = [
        &[0x17][..],
        &0x7777u32.to_le_bytes(),
        &[0],
        &1u32.to_le_bytes(),
    ]
    .concat();
    s.write_all(&packet(&unknown)).await.unwrap();
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await.unwrap();
    let mut err = vec![0u8; hdr[0] as usize];
    s.read_exact(&mut err).await.unwrap();
    assert_eq!(&err[..3], &[0xff, 0xdb, 0x04], "ERR 1243");
    assert!(
        err.windows(7).any(|w| w == b"sqlgate"),
        "{}",
        String::from_utf8_lossy(&err)
    );

    // EXECUTE of a prepared CALL: the procedure's second result set is
    // beyond what the text announced (ci may call procedures, and is
    // masked here too).
    let mut s = raw_login(port, "ci", "ci-pw", "app").await;
    let script = [
        packet(b"\x03PREPARE s FROM 'CALL odd_two_sets()'"),
        packet(b"\x03EXECUTE s"),
        packet(b"\x03SELECT 'end-of-script'"),
    ]
    .concat();
    s.write_all(&script).await.unwrap();
    let all = until(&mut s, b"end-of-script").await.concat();
    assert!(
        !all.windows(7).any(|w| w == b"example"),
        "{}",
        String::from_utf8_lossy(&all)
    );
    assert!(
        all.windows(4).any(|w| w == b"\x03***"),
        "the second set came masked: {}",
        String::from_utf8_lossy(&all)
    );
    direct
        .query_drop("DROP PROCEDURE odd_two_sets; DROP TABLE odd_customers")
        .await
        .unwrap();
}

/// A reload that makes masking rules apply: statements the session
/// prepared before it cannot be executed any more (COM_STMT_EXECUTE is
/// never judged, and the session does not follow results); the session
/// must reconnect, and new sessions are masked.
#[tokio::test]
async fn a_reload_that_adds_masks_refuses_statements_prepared_before_it() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "DROP TABLE IF EXISTS reload_people; \
             CREATE TABLE reload_people (id INT, ssn TEXT); \
             INSERT INTO reload_people VALUES (1, '123-45-6789')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(&["app"], "");
    let gw = config.start().await;
    let url = gw.mysql_url("bot", "bot-pw", "app");
    let mut before = conn(&url).await;
    let stmt = before.prep("SELECT ssn FROM reload_people").await.unwrap();
    let clear: Option<String> = before.exec_first(&stmt, ()).await.unwrap();
    assert_eq!(clear.as_deref(), Some("123-45-6789"));

    std::fs::write(
        config.path().join("policies/extra.toml"),
        "[[mask]]\ncolumns = [\"*.reload_people.ssn\"]\nfunction = { keep_last = 4 }\n",
    )
    .unwrap();
    let loaded = sqlgate::config::Config::load(&config.write()).unwrap();
    sqlgate::server::reload_policy(&loaded, &gw.running.engine).unwrap();
    gw.catalog_has("reload_people").await;

    let refused = before.exec_first::<String, _, _>(&stmt, ()).await;
    match refused {
        Err(mysql_async::Error::Server(e)) => {
            assert_eq!(e.code, 1142, "{e:?}");
            assert!(e.message.contains("reconnect"), "{e:?}");
        }
        other => panic!("executed after the reload: {other:?}"),
    }
    let mut after = conn(&url).await;
    let stmt = after.prep("SELECT ssn FROM reload_people").await.unwrap();
    let masked: Option<String> = after.exec_first(&stmt, ()).await.unwrap();
    assert_eq!(masked.as_deref(), Some("***-**-6789"));
    direct.query_drop("DROP TABLE reload_people").await.unwrap();
}

#[tokio::test]
async fn a_masked_number_is_null_never_a_value_that_looks_true() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "CREATE OR REPLACE TABLE mask_numbers (id INT, email TEXT); \
             INSERT INTO mask_numbers VALUES (1, 'ann@example.com')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.mask_numbers.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("mask_numbers").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    let sql = "SELECT COUNT(email), MAX(LENGTH(email)) FROM mask_numbers";
    // Text protocol, then binary (prepared).
    let text: (Option<i64>, Option<i64>) = bot.query_first(sql).await.unwrap().unwrap();
    assert_eq!(text, (None, None));
    let binary: (Option<i64>, Option<i64>) = bot.exec_first(sql, ()).await.unwrap().unwrap();
    assert_eq!(binary, (None, None));
}

#[tokio::test]
async fn a_masked_identity_lists_tables_as_reflection_does() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop("CREATE OR REPLACE TABLE mask_listed (id INT, email TEXT)")
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.mask_listed.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("mask_listed").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    // What SQLAlchemy's reflection sends: the database named, not a table.
    let tables: Vec<(String, String)> = bot.query("SHOW FULL TABLES FROM `app`").await.unwrap();
    assert!(
        tables.iter().any(|(name, _)| name == "mask_listed"),
        "{tables:?}"
    );
    let names: Vec<String> = bot.query("SHOW TABLES").await.unwrap();
    assert!(names.iter().any(|n| n == "mask_listed"), "{names:?}");
}

#[tokio::test]
async fn sql_prepare_of_a_harmless_read_runs_and_of_a_masked_one_is_refused() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "CREATE OR REPLACE TABLE mask_prepared (id INT, email TEXT); \
             INSERT INTO mask_prepared VALUES (7, 'zqxprep7@leak.test')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.mask_prepared.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("mask_prepared").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    bot.query_drop("PREPARE p FROM 'SELECT id FROM mask_prepared'")
        .await
        .unwrap();
    let id: Option<i64> = bot.query_first("EXECUTE p").await.unwrap();
    assert_eq!(id, Some(7));
    for sql in [
        "PREPARE q FROM 'SELECT LOWER(email) FROM mask_prepared'",
        "PREPARE q FROM \"SELECT email FROM mask_prepared\"",
    ] {
        match bot.query_drop(sql).await.unwrap_err() {
            mysql_async::Error::Server(e) => assert_eq!(e.code, 1142, "{sql}: {}", e.message),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn use_of_the_targets_database_keeps_names_resolving() {
    let my = mariadb::shared();
    let mut direct = conn(&my.direct_url()).await;
    direct
        .query_drop(
            "CREATE OR REPLACE TABLE mask_used (id INT, email TEXT); \
             INSERT INTO mask_used VALUES (1, 'zqxuse7@leak.test')",
        )
        .await
        .unwrap();
    let mut config = TestConfig::mysql(my);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"app.mask_used.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("mask_used").await;
    let mut bot = conn(&gw.mysql_url("bot", "bot-pw", "app")).await;
    let mut results = bot
        .query_iter("USE app; SELECT id, LOWER(email) FROM mask_used")
        .await
        .unwrap();
    let mut got: Vec<(i64, String)> = Vec::new();
    while !results.is_empty() {
        let set: Vec<(i64, String)> = results.collect().await.unwrap();
        got.extend(set);
    }
    drop(results);
    assert_eq!(got, vec![(1, "***".to_owned())]);
    bot.query_drop("USE app").await.unwrap();
    let got: Vec<(i64, String)> = bot
        .query("SELECT id, LOWER(email) FROM mask_used")
        .await
        .unwrap();
    assert_eq!(got, vec![(1, "***".to_owned())]);
    // Another database is out of the target's reach either way.
    assert!(bot.query_drop("USE mysql").await.is_err());
}
