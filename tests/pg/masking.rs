//! Masking on the PostgreSQL path: values of masked columns reach a
//! masked identity masked, however the statement is written and in every
//! protocol and format; what cannot be masked is refused; exempt
//! identities read clear values; the catalog is read again after DDL.

use crate::support::gateway::{connect, TestConfig};
use crate::support::pg;

const MASKS: &str = r#"
[[mask]]
name = "customer-pii"
columns = ["public.mask_customers.ssn", "public.mask_customers.email"]
function = "redact"
except_users = ["ci"]
"#;

#[tokio::test]
async fn masked_values_never_reach_a_masked_identity() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP VIEW IF EXISTS mask_people, mask_names; DROP TABLE IF EXISTS mask_customers; \
             CREATE TABLE mask_customers (id int, name text, email text, ssn text); \
             INSERT INTO mask_customers VALUES (1, 'Ann', 'ann@example.com', '900-11-2222'); \
             CREATE VIEW mask_people AS SELECT name, lower(email) AS mail FROM mask_customers; \
             GRANT ALL ON mask_customers, mask_people TO app_owner; \
             GRANT CREATE ON SCHEMA public TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], MASKS);
    let gw = config.start().await;
    gw.catalog_has("mask_customers").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;

    let row = bot
        .query_one("SELECT id, name FROM mask_customers", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(1), "Ann");
    let n: i64 = bot
        .query_one("SELECT count(*) FROM mask_customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // Masked on the wire, by the rule's function, whatever the query:
    // simple protocol (text) and prepared statements (binary for typed
    // columns with tokio-postgres).
    for (sql, expected) in [
        ("SELECT ssn FROM mask_customers", vec!["***"]),
        ("SELECT lower(email) FROM mask_customers", vec!["***"]),
        ("SELECT email || '' FROM mask_customers", vec!["***"]),
        ("SELECT (SELECT max(ssn) FROM mask_customers)", vec!["***"]),
        (
            "WITH x AS (SELECT ssn FROM mask_customers) SELECT * FROM x",
            vec!["***"],
        ),
        (
            "SELECT name FROM mask_customers UNION ALL SELECT ssn FROM mask_customers",
            vec!["***", "***"],
        ),
        (
            "SELECT row_to_json(c)::text FROM mask_customers c",
            vec!["***"],
        ),
        ("SELECT mail FROM mask_people", vec!["***"]),
        (
            "SELECT id::text, name, email, ssn FROM mask_customers",
            vec!["1", "Ann", "***", "***"],
        ),
    ] {
        let got: Vec<String> = bot
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_owned())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(got, expected, "simple: {sql}");
        let rows = bot
            .query(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("prepared {sql}: {e}"));
        let got: Vec<String> = rows
            .iter()
            .flat_map(|r| (0..r.len()).map(move |i| r.get::<_, String>(i)))
            .collect();
        assert_eq!(got, expected, "prepared: {sql}");
    }
    // The system catalogs stay readable (psql's \d, drivers' metadata);
    // planner statistics, which quote column values, do not.
    let n = bot
        .simple_query(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = 'mask_customers'",
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(n, 1);
    let e = bot
        .simple_query(
            "SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'mask_customers'",
        )
        .await
        .unwrap_err();
    assert!(
        e.as_db_error().unwrap().message().contains("pg_stats"),
        "{e}"
    );

    // SQL cursors: FETCH returns what the cursor's query would, masked.
    let got: Vec<String> = bot
        .simple_query(
            "BEGIN; DECLARE c CURSOR FOR SELECT name, lower(email) FROM mask_customers; \
             FETCH ALL FROM c; COMMIT",
        )
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(format!("{}|{}", r.get(0).unwrap(), r.get(1).unwrap()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(got, vec!["Ann|***"]);

    // The extended protocol as no driver sends it: Parse, Bind (binary
    // results), Execute one row at a time (a suspended portal), no
    // Describe at all; a second portal of the same statement; pipelined.
    {
        use crate::support::raw::RawClient;
        use postgres_protocol::message::frontend;
        let (mut raw, _) =
            RawClient::connect(gw.addr(), &[("user", "bot"), ("database", "app")], "bot-pw")
                .await
                .unwrap();
        let mut out = bytes::BytesMut::new();
        frontend::parse(
            "s1",
            "SELECT id::text, ssn FROM mask_customers",
            [],
            &mut out,
        )
        .unwrap();
        for (portal, format) in [("p1", 1i16), ("p2", 0)] {
            let no_params: [Option<&[u8]>; 0] = [];
            frontend::bind(
                portal,
                "s1",
                [],
                no_params,
                |_, _| Ok(postgres_protocol::IsNull::No),
                [format],
                &mut out,
            )
            .map_err(|_| ())
            .unwrap();
        }
        frontend::execute("p1", 1, &mut out).unwrap();
        frontend::execute("p1", 1, &mut out).unwrap();
        frontend::execute("p2", 0, &mut out).unwrap();
        frontend::sync(&mut out);
        raw.send(&out).await;
        let msgs = raw.until_ready().await;
        let tags: String = msgs.iter().map(|(t, _)| *t as char).collect();
        assert_eq!(tags, "122DsCDCZ", "no Describe reaches the client");
        let rows: Vec<&[u8]> = msgs
            .iter()
            .filter(|(t, _)| *t == b'D')
            .map(|(_, b)| &b[..])
            .collect();
        for row in rows {
            let text = String::from_utf8_lossy(row);
            assert!(text.contains("***") && !text.contains("2222"), "{text}");
        }

        // A Query sent after an extended-protocol error and before Sync is
        // discarded by the server: the relay must not expect its answer.
        out.clear();
        frontend::parse("", "SELECT 1/0", [], &mut out).unwrap();
        let no_params: [Option<&[u8]>; 0] = [];
        frontend::bind(
            "",
            "",
            [],
            no_params,
            |_, _| Ok(postgres_protocol::IsNull::No),
            [0],
            &mut out,
        )
        .map_err(|_| ())
        .unwrap();
        frontend::execute("", 0, &mut out).unwrap();
        frontend::query("SELECT 1", &mut out).unwrap();
        frontend::sync(&mut out);
        raw.send(&out).await;
        let tags: String = raw
            .until_ready()
            .await
            .iter()
            .map(|(t, _)| *t as char)
            .collect();
        assert_eq!(tags, "1EZ", "the error comes at Bind (constant folding)");
        // A SQL cursor is a portal too: Execute of it without Bind.
        raw.query("BEGIN").await;
        raw.query("DECLARE c CURSOR FOR SELECT ssn, lower(email) FROM mask_customers")
            .await;
        out.clear();
        frontend::execute("c", 0, &mut out).unwrap();
        frontend::sync(&mut out);
        raw.send(&out).await;
        let got = raw.until_ready().await;
        let mut msgs = raw
            .query("SELECT ssn, lower(email) FROM mask_customers")
            .await;
        msgs.extend(got);
        assert!(msgs.iter().any(|(t, _)| *t == b'D'));
        for (t, body) in &msgs {
            let text = String::from_utf8_lossy(body);
            assert!(
                *t != b'D'
                    || (text.contains("***") && !text.contains("2222") && !text.contains("ann@")),
                "{text}"
            );
        }
    }

    // Refused: paths that are not result sets, filters on masked columns.
    for sql in [
        "SELECT name FROM mask_customers WHERE ssn LIKE '900-%'",
        "COPY mask_customers TO STDOUT",
        "COPY (SELECT email FROM mask_customers) TO STDOUT",
    ] {
        let e = bot.simple_query(sql).await.unwrap_err();
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(db.code().code(), "42501", "{sql}: {db:?}");
        assert!(
            db.message().starts_with("masking: ") && db.message().contains("ssn")
                || db.message().contains("email"),
            "{sql}: {}",
            db.message()
        );
    }
    // A cast error quoting a masked value is scrubbed.
    let e = bot
        .simple_query("SELECT ssn::int FROM mask_customers")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "22P02");
    assert!(!format!("{db:?}").contains("2222"), "{db:?}");

    // `sqlgate explain` shows the plan, read from the target's catalog.
    let explain = |user: &str, format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlgate"))
            .args([
                "explain", "--user", user, "--target", "app", "--format", format,
            ])
            .arg("--config")
            .arg(config.write())
            .arg("SELECT id, lower(email) AS mail, ssn FROM mask_customers")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = explain("bot", "text");
    for line in [
        "id                 clear",
        "mail               masked by rule \"customer-pii\" with redact: computed from public.mask_customers.email",
        "ssn                masked by rule \"customer-pii\" with redact: a plain reference to public.mask_customers.ssn",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&explain("bot", "json")).unwrap();
    assert_eq!(
        json["statements"][0]["masking"]["columns"][2]["masked"],
        true
    );
    assert!(!explain("ci", "text").contains("masking"), "ci is exempt");

    // The exempt identity reads clear values.
    let ci = connect(&gw.conn_str("ci", "ci-pw", "app")).await;
    let ssn: String = ci
        .query_one("SELECT ssn FROM mask_customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ssn, "900-11-2222");

    // DDL through the gateway: a new view is unknown until the catalog is
    // read again, then judged by what it reads.
    ci.batch_execute(
        "CREATE VIEW mask_names AS SELECT id, name FROM mask_customers; \
         CREATE OR REPLACE VIEW mask_leak AS SELECT ssn FROM mask_customers",
    )
    .await
    .unwrap();
    // Its next statement finds the DDL done: the catalog is read again.
    ci.simple_query("SELECT 1").await.unwrap();
    gw.catalog_has("mask_leak").await;
    bot.simple_query("SELECT name FROM mask_names")
        .await
        .unwrap();
    let ssn: String = bot
        .query_one("SELECT * FROM mask_leak", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ssn, "***");
    direct
        .batch_execute("DROP VIEW mask_names, mask_leak, mask_people; DROP TABLE mask_customers")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_masked_number_is_null_never_a_value_that_looks_true() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS mask_numbers; \
             CREATE TABLE mask_numbers (id int, email text, ssn text); \
             INSERT INTO mask_numbers VALUES (1, 'ann@example.com', '900-11-2222'); \
             GRANT ALL ON mask_numbers TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.mask_numbers.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("mask_numbers").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    // Text protocol and binary (prepared) alike.
    let row = bot
        .query_one(
            "SELECT count(email), max(length(email)) FROM mask_numbers",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<i64>>(0), None, "count of masked values");
    assert_eq!(
        row.get::<_, Option<i32>>(1),
        None,
        "length of a masked value"
    );
    let msgs = bot
        .simple_query("SELECT length(email) FROM mask_numbers")
        .await
        .unwrap();
    let got: Vec<Option<String>> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![None]);
}

#[tokio::test]
async fn set_returning_functions_table_and_only_run_for_a_masked_identity() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP TABLE IF EXISTS mask_srf; CREATE TABLE mask_srf (id int, email text); \
             INSERT INTO mask_srf VALUES (1, 'zqxsrf7@leak.test'); \
             GRANT ALL ON mask_srf TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"public.mask_srf.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("mask_srf").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    let n: i64 = bot
        .query_one("SELECT count(*) FROM generate_series(1, 3) g", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
    let rows = bot
        .query("SELECT x FROM unnest(ARRAY['a', 'b']) AS x", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    // TABLE t and FROM ONLY t are read as what they mean: masked.
    for sql in ["TABLE mask_srf", "SELECT id, email FROM ONLY mask_srf"] {
        let msgs = bot
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let row: Vec<String> = msgs
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .expect("a row");
        assert_eq!(row, vec!["1".to_owned(), "***".to_owned()], "{sql}");
    }
    // Over a masked column, a set-returning function still masks or
    // refuses: never the value.
    for sql in [
        "SELECT e FROM mask_srf, unnest(ARRAY[email]) AS e",
        "SELECT j.value FROM mask_srf m, json_each_text(row_to_json(m)) j",
    ] {
        match bot.simple_query(sql).await {
            Ok(msgs) => {
                let values: Vec<String> = msgs
                    .iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some(r.get(0).unwrap_or("").to_owned())
                        }
                        _ => None,
                    })
                    .collect();
                assert!(!values.is_empty(), "{sql}: no rows");
                assert!(
                    values.iter().all(|v| !v.contains("zqxsrf7")),
                    "{sql}: {values:?}"
                );
            }
            Err(e) => assert_eq!(
                e.as_db_error().map(|d| d.code().code()),
                Some("42501"),
                "{sql}: {e}"
            ),
        }
    }
}

#[tokio::test]
async fn a_search_path_the_session_sets_is_followed_and_never_guessed() {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(
            "DROP SCHEMA IF EXISTS crm CASCADE; CREATE SCHEMA crm; \
             CREATE TABLE crm.people (id int, email text); \
             INSERT INTO crm.people VALUES (1, 'zqxpath7@leak.test'); \
             DROP TABLE IF EXISTS public.path_twin; CREATE TABLE public.path_twin (id int); \
             CREATE TABLE crm.path_twin (id int, email text); \
             GRANT USAGE ON SCHEMA crm TO app_owner; \
             GRANT ALL ON ALL TABLES IN SCHEMA crm TO app_owner; \
             GRANT ALL ON public.path_twin TO app_owner",
        )
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(
        &["app"],
        "[[mask]]\ncolumns = [\"crm.*.email\"]\nfunction = \"redact\"\n",
    );
    let gw = config.start().await;
    gw.catalog_has("path_twin").await;
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    // Before: `people` is not on the path (the server would not find it).
    assert!(bot.simple_query("SELECT email FROM people").await.is_err());
    for set in [
        "SET search_path = crm, public",
        "SELECT pg_catalog.set_config('search_path', 'crm', false)",
    ] {
        bot.simple_query(set).await.unwrap();
        let rows = bot
            .query("SELECT id, lower(email) FROM people", &[])
            .await
            .unwrap_or_else(|e| panic!("after {set}: {e}"));
        assert_eq!(rows[0].get::<_, Option<String>>(1).as_deref(), Some("***"));
    }
    // `path_twin` is public's or crm's, depending on which of the paths
    // the server still has: refused, never guessed.
    let err = bot
        .simple_query("SELECT * FROM path_twin")
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42501");
    assert!(
        db.message().contains("public.path_twin"),
        "{}",
        db.message()
    );
    bot.simple_query("SELECT * FROM crm.path_twin")
        .await
        .unwrap();
    direct
        .batch_execute("DROP SCHEMA crm CASCADE; DROP TABLE public.path_twin")
        .await
        .unwrap();
}
