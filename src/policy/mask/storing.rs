//! Where a statement that reads masked columns would put values
//! computed from them other than its result (rows of a table, variables,
//! settings, notifications, large objects): such statements are refused,
//! as the values would no longer be masked there. It must never let a
//! stored expression over a masked column pass unseen.

use std::ops::ControlFlow;

use sqlparser::ast::{SelectItem, Statement, Visit, Visitor};

use super::lineage::{object_parts, output_lineage, Catalog};
use super::rules::MaskRule;
use crate::policy::parse::SqlDialect;

/// Functions that keep or forward a value beyond the statement: a
/// setting read back later, a notification delivered to listeners, a
/// large object, another database.
const STORING_FUNCTIONS: &[&str] = &[
    "set_config",
    "pg_notify",
    "lo_from_bytea",
    "lo_put",
    "pg_logical_emit_message",
    "dblink",
    "dblink_exec",
    "dblink_send_query",
    "setval",
    "last_insert_id",
    "get_lock",
];

/// Where a statement that reads masked columns would put values computed
/// from them other than its result: rows of a table (INSERT ... SELECT,
/// UPDATE ... SET, CREATE TABLE AS, SELECT INTO), variables (`SET @v =`,
/// `@v := ...`, `SELECT ... INTO @v`), settings and notifications
/// (`set_config`, `pg_notify`). Returns what and which masked column.
pub(super) fn stores_masked(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
    rules: &[&MaskRule],
) -> Option<(String, String)> {
    use sqlparser::ast::Expr;
    // Expressions that store, anywhere in the statement.
    struct Storing(Option<&'static str>);
    impl Visitor for Storing {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::BinaryOp {
                    op: sqlparser::ast::BinaryOperator::Assignment,
                    ..
                } => self.0 = Some("an assignment to a variable (:=)"),
                Expr::Function(f) => {
                    let parts = object_parts(&f.name);
                    if let Some(name) = parts.last() {
                        if let Some(n) = STORING_FUNCTIONS.iter().find(|n| **n == name.as_str()) {
                            self.0 = Some(n);
                        }
                    }
                }
                _ => {}
            }
            if self.0.is_some() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let mut storing = Storing(None);
    let _ = stmt.visit(&mut storing);
    if let Some(what) = storing.0 {
        return Some((
            what.to_owned(),
            "masked columns this statement reads".to_owned(),
        ));
    }
    // Every statement that writes, at any depth (data-modifying CTEs).
    let mut nested: Vec<Statement> = Vec::new();
    {
        struct Nested<'v>(&'v mut Vec<Statement>);
        impl Visitor for Nested<'_> {
            type Break = ();
            fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
                self.0.push(s.clone());
                ControlFlow::Continue(())
            }
        }
        let _ = stmt.visit(&mut Nested(&mut nested));
    }
    nested
        .iter()
        .find_map(|s| stored_by(s, dialect, catalog, rules))
}

/// What one statement writes that comes from masked columns (or from
/// somewhere lineage cannot follow): `(what, why)`.
fn stored_by(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
    rules: &[&MaskRule],
) -> Option<(String, String)> {
    use sqlparser::ast::Expr;
    // The values written, as the outputs of queries.
    let mut written: Vec<Statement> = Vec::new();
    let what = match stmt {
        Statement::Merge { .. } => {
            return Some((
                "MERGE".to_owned(),
                "a statement that reads masked columns".to_owned(),
            ))
        }
        Statement::Insert(i) => {
            if let Some(q) = &i.source {
                written.push(Statement::Query(q.clone()));
            }
            let mut values: Vec<Expr> = i.assignments.iter().map(|a| a.value.clone()).collect();
            match &i.on {
                Some(sqlparser::ast::OnInsert::DuplicateKeyUpdate(a)) => {
                    values.extend(a.iter().map(|a| a.value.clone()))
                }
                Some(sqlparser::ast::OnInsert::OnConflict(c)) => {
                    if let sqlparser::ast::OnConflictAction::DoUpdate(u) = &c.action {
                        values.extend(u.assignments.iter().map(|a| a.value.clone()));
                    }
                }
                _ => {}
            }
            if !values.is_empty() {
                let target = match &i.table {
                    sqlparser::ast::TableObject::TableName(n) => n.clone(),
                    _ => {
                        return Some((
                            "INSERT".to_owned(),
                            "a statement that reads masked columns".to_owned(),
                        ))
                    }
                };
                // `excluded.col` (PostgreSQL) is the row being inserted.
                let from = from_clause(dialect, &format!("{target}, {target} AS excluded"))?;
                written.push(probe_select(dialect, values, from)?);
            }
            "INSERT"
        }
        Statement::CreateTable(c) => {
            written.push(Statement::Query(c.query.clone()?));
            "CREATE TABLE AS"
        }
        Statement::Query(_) if has_select_into(stmt) => {
            written.push(stmt.clone());
            "SELECT INTO"
        }
        Statement::Update(u) => {
            let mut from = vec![u.table.clone()];
            if let Some(
                sqlparser::ast::UpdateTableFromKind::AfterSet(f)
                | sqlparser::ast::UpdateTableFromKind::BeforeSet(f),
            ) = &u.from
            {
                from.extend(f.iter().cloned());
            }
            let values = u.assignments.iter().map(|a| a.value.clone()).collect();
            written.push(probe_select(dialect, values, from)?);
            "UPDATE"
        }
        Statement::Set(sqlparser::ast::Set::SingleAssignment { values, .. }) => {
            written.push(probe_select(dialect, values.clone(), Vec::new())?);
            "SET"
        }
        Statement::Set(sqlparser::ast::Set::MultipleAssignments { assignments }) => {
            let values = assignments.iter().map(|a| a.value.clone()).collect();
            written.push(probe_select(dialect, values, Vec::new())?);
            "SET"
        }
        _ => return None,
    };
    for w in &written {
        let Ok(outs) = output_lineage(w, dialect, catalog) else {
            return Some((what.to_owned(), "values sqlgate cannot follow".to_owned()));
        };
        for o in &outs {
            if let Some(c) = o
                .lineage
                .sources
                .iter()
                .find(|c| rules.iter().any(|r| r.covers(c)))
            {
                return Some((what.to_owned(), format!("masked column {c}")));
            }
            if let Some(why) = o.lineage.unknown.first() {
                return Some((what.to_owned(), format!("values of unknown origin ({why})")));
            }
        }
    }
    None
}

/// The FROM items of `SELECT 1 FROM <text>`.
fn from_clause(dialect: SqlDialect, text: &str) -> Option<Vec<sqlparser::ast::TableWithJoins>> {
    let stmt =
        sqlparser::parser::Parser::parse_sql(dialect.dialect(), &format!("SELECT 1 FROM {text}"))
            .ok()?
            .pop()?;
    match stmt {
        Statement::Query(q) => match *q.body {
            sqlparser::ast::SetExpr::Select(s) => Some(s.from),
            _ => None,
        },
        _ => None,
    }
}

/// Whether any SELECT of the statement has INTO (also inside set
/// operations and parentheses, where PostgreSQL accepts it too).
fn has_select_into(stmt: &Statement) -> bool {
    struct Into(bool);
    impl Visitor for Into {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            let mut stack = vec![q.body.as_ref()];
            while let Some(b) = stack.pop() {
                match b {
                    sqlparser::ast::SetExpr::Select(s) if s.into.is_some() => self.0 = true,
                    sqlparser::ast::SetExpr::SetOperation { left, right, .. } => {
                        stack.push(left);
                        stack.push(right);
                    }
                    _ => {}
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut into = Into(false);
    let _ = stmt.visit(&mut into);
    into.0
}

/// `SELECT <exprs> FROM <from>` in the statement's dialect.
fn probe_select(
    dialect: SqlDialect,
    exprs: Vec<sqlparser::ast::Expr>,
    from: Vec<sqlparser::ast::TableWithJoins>,
) -> Option<Statement> {
    let mut stmt = sqlparser::parser::Parser::parse_sql(dialect.dialect(), "SELECT 1")
        .ok()?
        .pop()?;
    let Statement::Query(q) = &mut stmt else {
        return None;
    };
    let sqlparser::ast::SetExpr::Select(s) = q.body.as_mut() else {
        return None;
    };
    s.projection = exprs.into_iter().map(SelectItem::UnnamedExpr).collect();
    s.from = from;
    Some(stmt)
}
