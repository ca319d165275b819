//! A MySQL target's reach: its own database and the system schemas.
//!
//! Why: targets on one server often share a backend account, and then the
//! server would let a session routed to one target read another's
//! database (`SELECT ... FROM other.t`, `USE other`, COM_INIT_DB). A
//! target must reach what its configuration says, whatever the account
//! may do. This module must never widen that: a name it cannot place
//! counts as outside.

use std::ops::ControlFlow;

use sqlparser::ast::{visit_relations, ObjectName, Statement, Use};

/// Schemas every target reaches: metadata and the server's own (whose
/// credential tables are `admin.secrets`, refused on their own).
const SYSTEM: [&str; 4] = ["information_schema", "performance_schema", "sys", "mysql"];

/// The first database `stmt` names outside `database` and the system
/// schemas, if any.
pub fn outside(stmt: &Statement, database: &str) -> Option<String> {
    if let Statement::Use(u) = stmt {
        return match u {
            Use::Object(n) | Use::Database(n) | Use::Schema(n) | Use::Catalog(n) => {
                schema_outside(n.0.last()?.to_string().trim_matches('`'), database)
            }
            _ => None,
        };
    }
    let mut found = None;
    let _ = visit_relations(stmt, |name: &ObjectName| {
        found = qualifier(name).and_then(|s| schema_outside(&s, database));
        if found.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    found
}

/// The database part of a qualified name (`db.table`).
fn qualifier(name: &ObjectName) -> Option<String> {
    let parts = &name.0;
    (parts.len() >= 2).then(|| {
        parts[parts.len() - 2]
            .as_ident()
            .map(|i| i.value.clone())
            .unwrap_or_else(|| parts[parts.len() - 2].to_string())
    })
}

fn schema_outside(schema: &str, database: &str) -> Option<String> {
    let system = SYSTEM.iter().any(|s| s.eq_ignore_ascii_case(schema));
    (schema != database && !system).then(|| schema.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::classify::{classify_text, Reading};
    use crate::policy::parse::SqlDialect;

    fn reach(sql: &str) -> Option<String> {
        let s = classify_text(SqlDialect::Mysql, sql.as_bytes());
        match &s[0].reading {
            Reading::Parsed(stmt) => outside(stmt, "app"),
            _ => panic!("{sql} did not parse"),
        }
    }

    #[test]
    fn a_target_reaches_its_database_and_the_system_schemas() {
        for inside in [
            "SELECT * FROM t",
            "SELECT * FROM app.t JOIN `app`.u USING (id)",
            "SELECT * FROM information_schema.TABLES",
            "SELECT * FROM INFORMATION_SCHEMA.COLUMNS",
            "USE app",
            "INSERT INTO app.t SELECT * FROM t",
        ] {
            assert_eq!(reach(inside), None, "{inside}");
        }
        for (sql, db) in [
            ("SELECT * FROM other.t", "other"),
            (
                "SELECT * FROM t WHERE id IN (SELECT id FROM `other`.`u`)",
                "other",
            ),
            ("USE other", "other"),
            ("USE `App`", "App"),
            ("INSERT INTO other.t SELECT * FROM t", "other"),
            (
                "UPDATE t JOIN other.u ON t.id = u.id SET t.v = u.v",
                "other",
            ),
        ] {
            assert_eq!(reach(sql).as_deref(), Some(db), "{sql}");
        }
    }
}
