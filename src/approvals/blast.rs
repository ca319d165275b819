//! How far a held statement reaches, for the person deciding it: the
//! planner's estimate of the rows an UPDATE or DELETE touches, asked on a
//! connection of the gateway's own — never by running the statement.
//! PostgreSQL: `EXPLAIN (FORMAT JSON)`, the rows under the ModifyTable
//! node; MySQL: `EXPLAIN`, rows × filtered.
//!
//! This module must never run a client's statement, nor anything but one
//! EXPLAIN without ANALYZE: PostgreSQL gets it as one Parse (a single
//! statement, whatever the text holds), MySQL on a connection without
//! multi-statements.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// How long an estimate may take (a free connection, the plan).
const ESTIMATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where estimates are asked: the held session's target.
#[derive(Clone)]
pub enum Estimator {
    /// A PostgreSQL target's pool.
    Postgres(Arc<sqlgate_postgres::Pool>),
    /// A MySQL target's pool.
    Mysql(Arc<sqlgate_mysql::Pool>),
}

impl std::fmt::Debug for Estimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Estimator::Postgres(_) => "Estimator::Postgres",
            Estimator::Mysql(_) => "Estimator::Mysql",
        })
    }
}

/// The lock PostgreSQL takes for a DDL statement, and the table it
/// takes it on (from the statement itself: no server asked).
pub fn pg_lock(statement: &sqlparser::ast::Statement) -> Option<(&'static str, Option<String>)> {
    use sqlparser::ast::{AlterTableOperation as A, ObjectType, Statement as S, TableConstraint};
    const AX: &str = "ACCESS EXCLUSIVE";
    Some(match statement {
        S::Truncate(t) => (AX, t.table_names.first().map(|n| n.name.to_string())),
        S::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => (AX, names.first().map(ToString::to_string)),
        S::Drop { .. } => (AX, None),
        S::AlterTable(at) => {
            let lock = if at.operations.iter().all(|op| {
                matches!(
                    op,
                    A::AddConstraint {
                        constraint: TableConstraint::ForeignKey(_),
                        ..
                    }
                )
            }) {
                "SHARE ROW EXCLUSIVE"
            } else if at
                .operations
                .iter()
                .all(|op| matches!(op, A::ValidateConstraint { .. }))
            {
                "SHARE UPDATE EXCLUSIVE"
            } else {
                AX
            };
            (lock, Some(at.name.to_string()))
        }
        S::CreateIndex(ci) => (
            if ci.concurrently {
                "SHARE UPDATE EXCLUSIVE"
            } else {
                "SHARE"
            },
            Some(ci.table_name.to_string()),
        ),
        _ => return None,
    })
}

/// What each lock stops while it is held.
fn blocks(lock: &str) -> &'static str {
    match lock {
        "ACCESS EXCLUSIVE" => "every read and write of the table waits",
        "SHARE" => "writes to the table wait",
        "SHARE ROW EXCLUSIVE" => "writes to the table wait",
        _ => "reads and writes go on; other DDL waits",
    }
}

/// Whether a statement with these tags gets a row estimate.
pub fn estimable(tags: &[String]) -> bool {
    tags.iter()
        .any(|t| matches!(t.as_str(), "write.update" | "write.delete"))
}

impl Estimator {
    /// The reach of a PostgreSQL DDL statement: its lock, and the size
    /// and row estimate of its table (asked as one statement).
    pub async fn ddl(&self, lock: &str, table: Option<&str>, rewrites: bool) -> String {
        let mut said = format!("takes {lock} ({})", blocks(lock));
        if rewrites {
            said.push_str("; rewrites or scans the whole table");
        }
        let (Estimator::Postgres(pool), Some(table)) = (self, table) else {
            return said;
        };
        match tokio::time::timeout(ESTIMATE_TIMEOUT, table_size(pool, table)).await {
            Ok(Ok((rows, bytes))) => {
                said.push_str(&format!(
                    "; the table holds about {rows} rows, {} MiB",
                    bytes / (1 << 20)
                ));
            }
            Ok(Err(why)) => said.push_str(&format!("; size unavailable: {why}")),
            Err(_) => said.push_str("; size unavailable: no answer in time"),
        }
        said
    }

    /// The estimate of `statement` (the client's text of one statement),
    /// in words: "about N rows (planner estimate)" or why there is none.
    pub async fn estimate(&self, statement: &str) -> String {
        let asked = async {
            match self {
                Estimator::Postgres(pool) => postgres(pool, statement).await,
                Estimator::Mysql(pool) => mysql(pool, statement).await,
            }
        };
        match tokio::time::timeout(ESTIMATE_TIMEOUT, asked).await {
            Ok(Ok(said)) => said,
            Ok(Err(why)) => format!("estimate unavailable: {why}"),
            Err(_) => format!(
                "estimate unavailable: no answer within {}s",
                ESTIMATE_TIMEOUT.as_secs()
            ),
        }
    }
}

fn said_rows(n: u64, what: &str) -> String {
    format!(
        "about {n} row{} {what} (planner estimate)",
        if n == 1 { "" } else { "s" }
    )
}

async fn postgres(pool: &Arc<sqlgate_postgres::Pool>, statement: &str) -> Result<String, String> {
    if statement.contains('$') && has_parameter(statement) {
        return Err("the plan depends on the values bound to its parameters".to_owned());
    }
    let mut lease = pool.acquire(()).await.map_err(|e| e.to_string())?;
    // In a read-only transaction: whatever planning evaluates (an
    // immutable or stable function) cannot write.
    let asked = async {
        let begun = lease.conn().simple_query("BEGIN READ ONLY").await?;
        let explained = lease
            .conn()
            .query_one_statement(&format!("EXPLAIN (FORMAT JSON) {statement}"))
            .await;
        Ok::<_, sqlgate_postgres::backend::BackendError>((begun.status, explained))
    }
    .await;
    // The reset rolls the transaction back.
    sqlgate_postgres::pool::release(lease, b'T', false).await;
    let (_, explained) = asked.map_err(|e| e.to_string())?;
    let (rows, outcome) = explained.map_err(|e| e.to_string())?;
    if outcome.error.is_some() {
        // (Not its message: it could quote what the statement reads.)
        return Err("the server could not plan it".to_owned());
    }
    let text = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .ok_or("the plan was empty")?;
    let plan: Value = serde_json::from_str(&text).map_err(|_| "the plan was not JSON")?;
    modified_rows(&plan[0]["Plan"])
        .map(|n| said_rows(n, "changed"))
        .ok_or_else(|| "no ModifyTable node in the plan".to_owned())
}

/// A table's row estimate and total size on disk.
async fn table_size(pool: &Arc<sqlgate_postgres::Pool>, table: &str) -> Result<(i64, i64), String> {
    // The name as a string literal (quotes doubled), resolved by the
    // server; one statement in one Parse.
    // Dollar-quoted with a tag the name does not hold: read the same
    // whatever standard_conforming_strings says.
    let mut tag = String::from("n");
    while table.contains(&format!("${tag}$")) {
        tag.push('n');
    }
    let sql = format!(
        "SELECT c.reltuples::bigint, pg_catalog.pg_total_relation_size(c.oid) \
         FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass(${tag}${table}${tag}$)"
    );
    let mut lease = pool.acquire(()).await.map_err(|e| e.to_string())?;
    let asked = lease.conn().query_one_statement(&sql).await;
    sqlgate_postgres::pool::release(lease, sqlgate_postgres::messages::TX_IDLE, false).await;
    let (rows, outcome) = asked.map_err(|e| e.to_string())?;
    if outcome.error.is_some() {
        return Err("the server could not say".to_owned());
    }
    let row = rows
        .first()
        .ok_or("no such table (created in this transaction?)")?;
    let n = |i: usize| -> i64 {
        row.get(i)
            .cloned()
            .flatten()
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    Ok((n(0).max(0), n(1).max(0)))
}

/// `$1`-style parameters outside strings (a rough look: a `$` in a string
/// at worst costs the estimate).
fn has_parameter(statement: &str) -> bool {
    let b = statement.as_bytes();
    b.windows(2).any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

/// The rows the plan's ModifyTable node reads from its input.
fn modified_rows(plan: &Value) -> Option<u64> {
    if plan["Node Type"] == "ModifyTable" {
        let input = plan["Plans"].as_array()?.iter().find(|p| {
            // The scan it modifies from, not a CTE or InitPlan.
            p["Parent Relationship"]
                .as_str()
                .is_none_or(|r| r == "Outer" || r == "Member")
        })?;
        return input["Plan Rows"].as_f64().map(|r| r.round() as u64);
    }
    plan["Plans"].as_array()?.iter().find_map(modified_rows)
}

async fn mysql(pool: &Arc<sqlgate_mysql::Pool>, statement: &str) -> Result<String, String> {
    if statement.contains('?') {
        return Err("the plan depends on the values bound to its parameters".to_owned());
    }
    // No CLIENT_MULTI_STATEMENTS: the server runs one statement per query.
    let key = sqlgate_mysql::backend::ConnKey {
        caps: 0,
        collation: 45,
    };
    let mut lease = pool.acquire(key).await.map_err(|e| e.to_string())?;
    let asked = lease
        .conn()
        .query_rows(&format!("EXPLAIN {statement}"))
        .await;
    sqlgate_mysql::pool::release(lease).await;
    let rows = asked.map_err(|_| "the server could not plan it".to_owned())?;
    // The first row is the modified table. MariaDB: id, select_type,
    // table, type, possible_keys, key, key_len, ref, rows, Extra (and
    // filtered after rows when shown); MySQL adds partitions after table
    // and always shows filtered.
    let first = rows.first().ok_or("the plan was empty")?;
    let (n, filtered) = match first.len() {
        12 => (first.get(9), first.get(10)),
        11 => (first.get(8), first.get(9)),
        _ => (first.get(8), None),
    };
    let n: f64 = n
        .cloned()
        .flatten()
        .and_then(|v| v.parse().ok())
        .ok_or("the plan has no row count")?;
    // Without `filtered` (MariaDB), rows examined is what the plan says.
    match filtered
        .cloned()
        .flatten()
        .and_then(|v| v.parse::<f64>().ok())
    {
        Some(f) => Ok(said_rows((n * f / 100.0).round() as u64, "changed")),
        None => Ok(said_rows(n.round() as u64, "examined")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_under_modify_table_are_the_estimate() {
        let plan: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Plan Rows": 0,
                "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 9876}]}}]"#,
        )
        .unwrap();
        assert_eq!(modified_rows(&plan[0]["Plan"]), Some(9876));
        let nested: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "Limit", "Plans": [{"Node Type": "ModifyTable",
                "Plans": [{"Node Type": "Index Scan", "Plan Rows": 3.4}]}]}}]"#,
        )
        .unwrap();
        assert_eq!(modified_rows(&nested[0]["Plan"]), Some(3));
        assert!(has_parameter("DELETE FROM t WHERE id = $1"));
        assert!(!has_parameter("DELETE FROM t WHERE v = 'a$'"));
    }
}
