//! The relay's picture of the server under raw protocol sequences: a
//! masked identity writes extended-protocol messages no driver would, in
//! orders meant to make the gateway's idea of statements, portals and
//! pending answers differ from the server's. Each scenario was a way to
//! read masked values in clear before the model followed the server's
//! answers; each must now end with no canary in any byte the client got.

use bytes::BytesMut;
use postgres_protocol::message::frontend;

use crate::support::gateway::{connect, Gateway, TestConfig};
use crate::support::pg;
use crate::support::raw::{Msg, RawClient};

/// Masks `email` of `table` for everyone but `ci`.
fn masks(table: &str) -> String {
    format!(
        r#"
[[mask]]
name = "state-pii"
columns = ["public.{table}.email"]
function = "redact"
except_users = ["ci"]
"#
    )
}

/// The value masking must hide.
pub const CANARY: &str = "zqxstate7@leak.test";

/// A gateway with `table` (whose email is masked for `bot`), three rows
/// of the canary.
pub async fn gateway(table: &str) -> Gateway {
    let server = pg::shared();
    let direct = connect(&server.direct_conn_str("app")).await;
    direct
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; \
             CREATE TABLE {table} (id int, email text); \
             INSERT INTO {table} SELECT g, '{CANARY}' FROM generate_series(1, 3) g; \
             GRANT ALL ON {table} TO app_owner"
        ))
        .await
        .unwrap();
    let mut config = TestConfig::new(server);
    config.with_example_policy(&["app"], &masks(table));
    let gw = config.start().await;
    gw.catalog_has(table).await;
    gw
}

pub async fn bot(gw: &Gateway) -> RawClient {
    RawClient::connect(gw.addr(), &[("user", "bot"), ("database", "app")], "bot-pw")
        .await
        .unwrap()
        .0
}

/// Client messages, built one after another.
#[derive(Default)]
pub struct Script(pub BytesMut);

impl Script {
    pub fn query(mut self, sql: &str) -> Self {
        frontend::query(sql, &mut self.0).unwrap();
        self
    }
    pub fn parse(mut self, name: &str, sql: &str) -> Self {
        frontend::parse(name, sql, [], &mut self.0).unwrap();
        self
    }
    /// A Bind without parameters, results in text.
    pub fn bind(mut self, portal: &str, statement: &str) -> Self {
        frontend::bind(
            portal,
            statement,
            [],
            Vec::<i32>::new(),
            |_, _| Ok(postgres_protocol::IsNull::No),
            [0],
            &mut self.0,
        )
        .map_err(|_| "bind")
        .unwrap();
        self
    }
    pub fn execute(mut self, portal: &str, rows: i32) -> Self {
        frontend::execute(portal, rows, &mut self.0).unwrap();
        self
    }
    pub fn describe(mut self, kind: u8, name: &str) -> Self {
        frontend::describe(kind, name, &mut self.0).unwrap();
        self
    }
    pub fn close(mut self, kind: u8, name: &str) -> Self {
        frontend::close(kind, name, &mut self.0).unwrap();
        self
    }
    pub fn sync(mut self) -> Self {
        frontend::sync(&mut self.0);
        self
    }
    pub fn flush(mut self) -> Self {
        frontend::flush(&mut self.0);
        self
    }
}

/// Sends `script` and reads until `readies` ReadyForQuery messages (or the
/// end of the connection).
pub async fn exchange(c: &mut RawClient, script: Script, readies: usize) -> Vec<Msg> {
    c.send(&script.0).await;
    let mut got = Vec::new();
    let mut seen = 0;
    while seen < readies {
        let Some(m) = c.read().await else { break };
        seen += usize::from(m.0 == b'Z');
        got.push(m);
    }
    got
}

/// Whether any message carries the canary.
pub fn leaked(msgs: &[Msg]) -> bool {
    msgs.iter()
        .any(|(_, body)| body.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()))
}

/// The DataRows among the messages.
fn rows(msgs: &[Msg]) -> usize {
    msgs.iter().filter(|(t, _)| *t == b'D').count()
}

fn summary(msgs: &[Msg]) -> String {
    msgs.iter()
        .map(|(t, b)| match t {
            b'E' => format!(
                "E({})",
                crate::support::raw::error_field(b, b'M').unwrap_or_default()
            ),
            t => (*t as char).to_string(),
        })
        .collect()
}

#[tokio::test]
async fn no_message_sequence_shakes_the_relays_picture() {
    let gw = gateway("state_customers").await;
    // Every scenario runs; the failures are listed together.
    let mut failed: Vec<String> = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            failed.push(what);
        }
    };

    // 1. A Query discarded after an error (skip to Sync) gets no answer;
    // the masked SELECT after it must still be masked.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .describe(b'S', "no_such_statement")
        .flush();
    let got = exchange(&mut c, script, 0).await;
    assert!(got.is_empty());
    let got = c.read().await.expect("the Describe's error");
    assert_eq!(got.0, b'E');
    let script = Script::default()
        .query("SELECT 'plain'::text")
        .sync()
        .query("SELECT email FROM state_customers");
    let got = exchange(&mut c, script, 2).await;
    check(!leaked(&got), format!("discarded Query: {}", summary(&got)));
    check(
        rows(&got) == 3,
        format!("the masked SELECT ran: {} (3 rows)", summary(&got)),
    );

    // 2. A Parse the server discarded (after an error) did not replace the
    // unnamed statement: the Execute runs the old, masked one.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .parse("", "SELECT email FROM state_customers")
        .sync()
        .describe(b'S', "no_such_statement")
        .parse("", "SELECT 'plain'::text AS email")
        .sync()
        .bind("", "")
        .execute("", 0)
        .sync();
    let got = exchange(&mut c, script, 3).await;
    check(!leaked(&got), format!("discarded Parse: {}", summary(&got)));
    check(rows(&got) == 3, format!("{} (3 rows)", summary(&got)));

    // 3. SQL DEALLOCATE drops a protocol statement; a Parse of the name
    // then succeeds on the server and must replace the relay's plan.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .parse("s1", "SELECT 'plain'::text AS email")
        .sync()
        .query("DEALLOCATE s1")
        .parse("s1", "SELECT email FROM state_customers")
        .bind("", "s1")
        .execute("", 0)
        .sync();
    let got = exchange(&mut c, script, 3).await;
    check(!leaked(&got), format!("DEALLOCATE: {}", summary(&got)));
    check(rows(&got) == 3, format!("{} (3 rows)", summary(&got)));

    // 4. A protocol portal ends with its transaction; an SQL cursor then
    // takes its name: Execute of the name runs the cursor.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .query("BEGIN")
        .parse(
            "plain",
            "SELECT 'plain'::text AS email FROM state_customers",
        )
        .bind("c1", "plain")
        .execute("c1", 1)
        .sync()
        .query("COMMIT")
        .query("BEGIN")
        .query("DECLARE c1 CURSOR FOR SELECT email FROM state_customers")
        .execute("c1", 0)
        .sync()
        .query("COMMIT");
    let got = exchange(&mut c, script, 7).await;
    check(
        !leaked(&got),
        format!("portal name reused by a cursor: {}", summary(&got)),
    );
    check(rows(&got) == 4, format!("{} (4 rows)", summary(&got)));

    // 5. A Bind the server refused (the portal exists: a cursor) did not
    // remap the portal; a savepoint's rollback keeps the transaction and
    // the cursor usable.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .parse("plain", "SELECT 'plain'::text")
        .sync()
        .query("BEGIN")
        .query("DECLARE p CURSOR FOR SELECT lower(email) FROM state_customers")
        .query("SAVEPOINT a")
        .bind("p", "plain")
        .sync()
        .query("ROLLBACK TO a")
        .execute("p", 0)
        .sync()
        .query("ROLLBACK");
    let got = exchange(&mut c, script, 8).await;
    check(!leaked(&got), format!("failed Bind: {}", summary(&got)));
    check(
        rows(&got) == 3,
        format!("failed Bind: {} (3 rows)", summary(&got)),
    );

    // 6. A cursor's plan ends with its transaction: a protocol portal of
    // the same name, fetched in SQL, is masked by its own statement.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .query("BEGIN")
        .query("DECLARE c2 CURSOR FOR SELECT 'plain'::text AS email")
        .query("COMMIT")
        .query("BEGIN")
        .parse("masked", "SELECT lower(email) FROM state_customers")
        .bind("c2", "masked")
        .sync()
        .query("FETCH ALL FROM c2")
        .query("COMMIT");
    let got = exchange(&mut c, script, 6).await;
    check(
        !leaked(&got),
        format!("stale cursor plan: {}", summary(&got)),
    );
    check(
        rows(&got) == 3,
        format!("stale cursor plan: {} (3 rows)", summary(&got)),
    );

    // 8. SQL EXECUTE of a statement the protocol prepared (a PREPARE of
    // its name failed on the server): the statement's plan masks it.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .parse("s1", "SELECT lower(email) AS e FROM state_customers")
        .sync()
        .query("PREPARE s1 AS SELECT 'x'::text AS e")
        .query("EXECUTE s1");
    let got = exchange(&mut c, script, 3).await;
    check(!leaked(&got), format!("SQL EXECUTE: {}", summary(&got)));
    check(
        rows(&got) == 3,
        format!("SQL EXECUTE: {} (3 rows)", summary(&got)),
    );

    // 9. Names of 64 bytes and more are one name to the server when their
    // first 63 bytes agree.
    let mut c = bot(&gw).await;
    let long = "a".repeat(63);
    let script = Script::default()
        .parse(&format!("{long}1"), "SELECT 'x'::text AS e")
        .close(b'S', &format!("{long}2"))
        .parse(
            &format!("{long}2"),
            "SELECT lower(email) AS e FROM state_customers",
        )
        .bind("", &format!("{long}1"))
        .execute("", 0)
        .sync();
    let got = exchange(&mut c, script, 1).await;
    check(!leaked(&got), format!("long names: {}", summary(&got)));
    check(
        rows(&got) == 3,
        format!("long names: {} (3 rows)", summary(&got)),
    );

    // 10. Only ASCII letters fold in unquoted names.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .query("BEGIN")
        .query("DECLARE Éa CURSOR FOR SELECT lower(email) AS e FROM state_customers")
        .query("DECLARE \"éa\" CURSOR FOR SELECT 'x'::text AS e")
        .query("FETCH ALL FROM Éa")
        .query("ROLLBACK");
    let got = exchange(&mut c, script, 5).await;
    check(!leaked(&got), format!("case folding: {}", summary(&got)));
    check(
        rows(&got) == 3,
        format!("case folding: {} (3 rows)", summary(&got)),
    );

    // 7. A refused statement's error never reaches the client raw, and
    // the refusal is not shifted onto a later statement.
    let mut c = bot(&gw).await;
    let script = Script::default()
        .describe(b'S', "no_such_statement")
        .query("DELETE FROM state_customers")
        .sync()
        .query("DELETE FROM state_customers")
        .query("SELECT 1");
    let got = exchange(&mut c, script, 3).await;
    let errors: Vec<String> = got
        .iter()
        .filter(|(t, _)| *t == b'E')
        .map(|(_, b)| crate::support::raw::error_field(b, b'C').unwrap_or_default())
        .collect();
    check(
        errors == ["26000", "42501"],
        format!("the Describe's error, then the refusal: {}", summary(&got)),
    );
    check(
        got.iter().all(|(_, b)| {
            !b.windows(b"sqlgate_refused".len())
                .any(|w| w == b"sqlgate_refused")
        }),
        format!("a marker's error reached the client: {}", summary(&got)),
    );
    check(
        rows(&got) == 1,
        format!("SELECT 1 answered: {} (1 rows)", summary(&got)),
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

#[tokio::test]
async fn a_masked_row_too_long_to_hold_ends_the_session_with_a_clear_error() {
    let gw = gateway("bigrow_customers").await;
    let direct = connect(&pg::shared().direct_conn_str("app")).await;
    direct
        .batch_execute(
            "UPDATE bigrow_customers SET email = repeat('y', 20 * 1024 * 1024) WHERE id = 1; \
             UPDATE bigrow_customers SET email = repeat('z', 70 * 1024 * 1024) WHERE id = 2",
        )
        .await
        .unwrap();
    let bot = connect(&gw.conn_str("bot", "bot-pw", "app")).await;
    // 20 MiB: held whole, masked.
    let row = bot
        .query_one("SELECT email FROM bigrow_customers WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "***");
    // 70 MiB: past the limit of a held row.
    let e = bot
        .query_one("SELECT email FROM bigrow_customers WHERE id = 2", &[])
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("an error from the gateway");
    assert_eq!(db.code().code(), "54000", "{db:?}");
    assert!(
        db.message().contains("exceeds the limit"),
        "{}",
        db.message()
    );
}
