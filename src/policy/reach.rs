//! A MySQL target's reach: its own database and `information_schema`.
//!
//! Why: targets on one server often share a backend account, and then the
//! server would let a session routed to one target read another's
//! database (`SELECT ... FROM other.t`, `USE other`, COM_INIT_DB). A
//! target must reach what its configuration says, whatever the account
//! may do. `performance_schema`, `sys` and `mysql` are outside every
//! target: they hold other sessions' statement texts, credentials and
//! other databases' routines. This module must never widen that: a name
//! it cannot place counts as outside.
//!
//! Statements whose every table name `visit_relations` reports (queries,
//! INSERT/UPDATE/DELETE, views and tables made from queries) are checked
//! on their AST, function names included. Every other statement — SHOW,
//! DDL, RENAME, LOAD DATA, what sqlparser cannot read — is checked on its
//! tokens: any `name.` qualifier, and the database of `SHOW ... FROM|IN`,
//! must be the target's.

use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_expressions, visit_relations, Expr, ObjectName, Query, SetExpr, Statement, Use, Visit,
    Visitor,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Schemas every target reaches: metadata only.
const SYSTEM: [&str; 1] = ["information_schema"];

/// The first database statement `text` (parsed as `stmt`, when sqlparser
/// read it) names outside `database`, if any.
pub fn outside(stmt: Option<&Statement>, text: &str, database: &str) -> Option<String> {
    match stmt {
        Some(Statement::Use(u)) => match u {
            Use::Object(n) | Use::Database(n) | Use::Schema(n) | Use::Catalog(n) => {
                schema_outside(&n.0.last()?.as_ident()?.value, database)
            }
            _ => None,
        },
        Some(s) if covered(s) => on_ast(s, database),
        // The statement as sqlparser prints it: every name as it read it.
        Some(s) => on_tokens(&s.to_string(), database),
        None => on_tokens(text, database),
    }
}

/// Whether [`outside`] reads only the statement's names (its AST, not
/// its text or its printed form): then texts that differ in literals
/// alone are outside alike.
pub fn reads_names_alone(stmt: &Statement) -> bool {
    matches!(stmt, Statement::Use(_)) || covered(stmt)
}

/// Statements whose every table name the AST visitor reports: a `TABLE
/// name` query anywhere in them (`SELECT 1 UNION TABLE other.t`, `FROM
/// (TABLE other.t) x`) names its table as a plain string the relation
/// visitor never sees, so such a statement is checked on its tokens.
fn covered(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    ) && stmt.visit(&mut TableQueries).is_continue()
}

/// Breaks at the first `TABLE name` query.
struct TableQueries;

impl Visitor for TableQueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        fn has_table(body: &SetExpr) -> bool {
            match body {
                SetExpr::Table(_) => true,
                SetExpr::SetOperation { left, right, .. } => has_table(left) || has_table(right),
                // (A nested query is visited on its own.)
                _ => false,
            }
        }
        if has_table(&query.body) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

fn on_ast(stmt: &Statement, database: &str) -> Option<String> {
    let mut found = None;
    let _ = visit_relations(stmt, |name: &ObjectName| {
        found = qualifier(name).and_then(|s| schema_outside(&s, database));
        if found.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if found.is_some() {
        return found;
    }
    // Stored functions of another database: `other.f()`.
    let _ = visit_expressions(stmt, |e: &Expr| {
        if let Expr::Function(f) = e {
            found = qualifier(&f.name).and_then(|s| schema_outside(&s, database));
        }
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

/// Every `name.` qualifier in the text, and the database of `SHOW ...
/// FROM|IN name`; the strings of `PREPARE ... FROM '...'` are statements
/// of their own.
fn on_tokens(text: &str, database: &str) -> Option<String> {
    let Ok(tokens) = Tokenizer::new(&MySqlDialect {}, text).tokenize() else {
        // What cannot be read cannot be placed.
        return Some("(unreadable)".to_owned());
    };
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let keyword = |t: &Token, k: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let show = words.first().is_some_and(|t| keyword(t, "SHOW"));
    // Texts run from strings: `PREPARE s FROM '...'`, `EXECUTE IMMEDIATE '...'`.
    let prepare = words
        .first()
        .is_some_and(|t| keyword(t, "PREPARE") || keyword(t, "EXECUTE"));
    // `SHOW COLUMNS|INDEX ... FROM table [FROM db]`: the first FROM names
    // a table of the current database.
    let mut table_first = show
        && words.iter().take(4).any(|t| {
            ["COLUMNS", "FIELDS", "INDEX", "INDEXES", "KEYS"]
                .iter()
                .any(|k| keyword(t, k))
        });
    for (i, t) in words.iter().enumerate() {
        match t {
            Token::Word(w) if words.get(i + 1) == Some(&&Token::Period) => {
                if let Some(db) = schema_outside(&w.value, database) {
                    return Some(db);
                }
            }
            Token::Word(_) if show && (keyword(t, "FROM") || keyword(t, "IN")) => {
                if std::mem::take(&mut table_first) {
                    continue;
                }
                if let Some(Token::Word(db)) = words.get(i + 1) {
                    // `FROM db.t` is caught above; `FROM t FROM db` too.
                    if words.get(i + 2) != Some(&&Token::Period) {
                        if let Some(db) = schema_outside(&db.value, database) {
                            return Some(db);
                        }
                    }
                }
            }
            Token::SingleQuotedString(inner) if prepare => {
                for s in crate::policy::classify::classify_text(
                    crate::policy::parse::SqlDialect::Mysql,
                    inner.as_bytes(),
                ) {
                    let stmt = match &s.reading {
                        crate::policy::classify::Reading::Parsed(p) => Some(p.as_ref()),
                        _ => None,
                    };
                    if let Some(db) = outside(stmt, s.excerpt(inner), database) {
                        return Some(db);
                    }
                }
            }
            _ => {}
        }
    }
    None
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
        let stmt = match &s[0].reading {
            Reading::Parsed(stmt) => Some(stmt.as_ref()),
            _ => None,
        };
        outside(stmt, s[0].excerpt(sql), "app")
    }

    #[test]
    fn a_target_reaches_its_database_and_information_schema() {
        for inside in [
            "SELECT * FROM t",
            "SELECT t.id, app.t.v FROM app.t JOIN `app`.u USING (id)",
            "SELECT * FROM information_schema.TABLES",
            "SELECT * FROM INFORMATION_SCHEMA.COLUMNS",
            "USE app",
            "USE information_schema",
            "CREATE TABLE sbtest1 (id INTEGER NOT NULL AUTO_INCREMENT, k INTEGER DEFAULT '0' NOT NULL, PRIMARY KEY (id)) /*! ENGINE = innodb */",
            "INSERT INTO app.t SELECT * FROM t",
            "SHOW TABLES",
            "SHOW TABLES FROM app",
            "SHOW CREATE TABLE app.t",
            "SHOW COLUMNS FROM t",
            "SHOW FULL COLUMNS FROM t FROM app",
            "SHOW INDEX FROM t IN app",
            "DROP TABLE t",
            "PREPARE s FROM 'SELECT * FROM app.t'",
        ] {
            assert_eq!(reach(inside), None, "{inside}");
        }
        for (sql, db) in [
            ("SELECT * FROM other.t", "other"),
            (
                "SELECT * FROM t WHERE id IN (SELECT id FROM `other`.`u`)",
                "other",
            ),
            ("SELECT other.f(1)", "other"),
            ("USE other", "other"),
            ("USE `App`", "App"),
            ("USE mysql", "mysql"),
            ("USE performance_schema", "performance_schema"),
            ("INSERT INTO other.t SELECT * FROM t", "other"),
            (
                "UPDATE t JOIN other.u ON t.id = u.id SET t.v = u.v",
                "other",
            ),
            (
                "SELECT * FROM performance_schema.threads",
                "performance_schema",
            ),
            ("SELECT * FROM mysql.proc", "mysql"),
            ("SHOW TABLES FROM other", "other"),
            ("SHOW TABLE STATUS IN other", "other"),
            ("SHOW CREATE TABLE other.t", "other"),
            ("SHOW COLUMNS FROM t FROM other", "other"),
            ("DROP TABLE other.t", "other"),
            ("RENAME TABLE other.secret TO app.s", "other"),
            ("CREATE TABLE t2 LIKE other.t", "other"),
            ("CHECKSUM TABLE other.t", "other"),
            ("PREPARE s FROM 'SELECT * FROM other.t'", "other"),
            ("EXECUTE IMMEDIATE 'SELECT * FROM other.t'", "other"),
            ("TABLE other.t", "other"),
            ("SELECT 1 UNION TABLE other.secret", "other"),
            ("SELECT * FROM (TABLE other.secret) x", "other"),
            ("SELECT * FROM t WHERE id IN (TABLE other.ids)", "other"),
            ("INSERT INTO t TABLE other.secret", "other"),
        ] {
            assert_eq!(reach(sql).as_deref(), Some(db), "{sql}");
        }
    }
}
