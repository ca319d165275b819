//! The relations a statement names (tables, views, CTEs) and the
//! functions it calls, for masking: what it touches, which names the
//! catalog lacks or cannot tell apart, which system relations show
//! column values. It must never count a table function as a relation.

use std::ops::ControlFlow;

use sqlparser::ast::{CopySource, ObjectName, Statement, Visit, Visitor};

use super::lineage::{norm, object_parts, reads_tables, relation_columns, Catalog, ColumnRef};
use super::metadata;
use crate::policy::parse::SqlDialect;

/// Schemas of system relations: they hold no table data (except the
/// statistics relations, refused on their own).
const SYSTEM_SCHEMAS: &[&str] = &[
    "pg_catalog",
    "information_schema",
    "mysql",
    "performance_schema",
    "sys",
];

/// A function's name if it can be a built-in: unqualified or in
/// `pg_catalog` (a same-named function elsewhere is a user's).
fn catalog_function(name: &ObjectName) -> Option<String> {
    match object_parts(name).as_slice() {
        [n] => Some(n.clone()),
        [s, n] if s == "pg_catalog" => Some(n.clone()),
        _ => None,
    }
}

/// The relations a statement names (tables and views, and the CTEs it
/// defines, which are not catalog objects).
pub(super) struct Relations {
    pub(super) names: Vec<ObjectName>,
    pub(super) ctes: Vec<String>,
    /// The next name the visitor reports is a table function's
    /// (`generate_series(1, 3)` in FROM): a function, not a relation.
    pub(super) function_next: bool,
    /// The statement calls a function that reads tables by name.
    pub(super) table_reader: bool,
    /// Functions it calls (last name part; schema-qualified only when
    /// `pg_catalog`).
    pub(super) functions: Vec<String>,
    /// Set-returning functions in its FROM lists.
    pub(super) table_functions: Vec<String>,
}

impl Visitor for Relations {
    type Break = ();
    fn pre_visit_table_factor(&mut self, t: &sqlparser::ast::TableFactor) -> ControlFlow<()> {
        if let sqlparser::ast::TableFactor::Table {
            args: Some(_),
            name,
            ..
        }
        | sqlparser::ast::TableFactor::Function { name, .. } = t
        {
            self.function_next = matches!(t, sqlparser::ast::TableFactor::Table { .. });
            if let Some(n) = catalog_function(name) {
                self.table_functions.push(n);
            }
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        // A set-returning function's values are of unknown origin to the
        // lineage (masked or refused there); it reads no relation itself.
        if !std::mem::take(&mut self.function_next) {
            self.names.push(r.clone());
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_expr(&mut self, e: &sqlparser::ast::Expr) -> ControlFlow<()> {
        if let sqlparser::ast::Expr::Function(f) = e {
            if object_parts(&f.name)
                .last()
                .is_some_and(|n| reads_tables(n))
            {
                self.table_reader = true;
            }
            if let Some(n) = catalog_function(&f.name) {
                self.functions.push(n);
            }
        }
        ControlFlow::Continue(())
    }
    fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            self.ctes
                .extend(w.cte_tables.iter().map(|c| norm(&c.alias.name)));
        }
        ControlFlow::Continue(())
    }
}

impl Relations {
    pub(super) fn of(stmt: &Statement) -> Self {
        let mut rels = Relations {
            names: Vec::new(),
            ctes: Vec::new(),
            function_next: false,
            table_reader: false,
            functions: Vec::new(),
            table_functions: Vec::new(),
        };
        let _ = stmt.visit(&mut rels);
        if let Statement::Copy {
            source: CopySource::Table { table_name, .. },
            ..
        } = stmt
        {
            rels.names.push(table_name.clone());
        }
        rels
    }

    /// An unqualified name that may be more than one relation for this
    /// session.
    pub(super) fn ambiguous(&self, catalog: &dyn Catalog) -> Option<(String, Vec<String>)> {
        self.names
            .iter()
            .find_map(|name| match object_parts(name).as_slice() {
                [t] if !self.ctes.contains(t) => catalog.ambiguous(t).map(|c| (t.clone(), c)),
                _ => None,
            })
    }

    /// A name that is neither a CTE of the statement, nor in the
    /// catalog, nor a system relation.
    pub(super) fn unknown(&self, catalog: &dyn Catalog) -> Option<String> {
        self.names.iter().find_map(|name| {
            let parts = object_parts(name);
            let known = match parts.as_slice() {
                // (The snapshot holds the system catalogs: a `pg_` name
                // it lacks is no more known than any other.)
                [t] => self.ctes.contains(t) || catalog.relation(None, t).is_some(),
                [.., s, t] => {
                    catalog.relation(Some(s), t).is_some() || SYSTEM_SCHEMAS.contains(&s.as_str())
                }
                _ => false,
            };
            (!known).then(|| name.to_string())
        })
    }

    /// A system relation that shows values of table columns: planner
    /// statistics (most common values, histogram bounds, minimum and
    /// maximum values).
    pub(super) fn statistics(&self) -> Option<String> {
        self.names.iter().find_map(|name| {
            let parts = object_parts(name);
            let t = parts.last()?;
            let schema = parts.len().checked_sub(2).map(|i| parts[i].as_str());
            let stats = matches!(
                t.as_str(),
                "pg_stats"
                    | "pg_statistic"
                    | "pg_stats_ext"
                    | "pg_stats_ext_exprs"
                    | "pg_statistic_ext_data"
            ) && schema.is_none_or(|s| s == "pg_catalog")
                || matches!(
                    (schema, t.as_str()),
                    (Some("mysql"), "column_stats")
                        | (Some("information_schema"), "column_statistics")
                );
            stats.then(|| name.to_string())
        })
    }

    /// Every base column behind every named relation (through views),
    /// and the texts of the metadata functions it calls.
    pub(super) fn columns(&self, dialect: SqlDialect, catalog: &dyn Catalog) -> Vec<ColumnRef> {
        let mut out: Vec<ColumnRef> = self
            .names
            .iter()
            .filter_map(|n| relation_columns(n, dialect, catalog))
            .flatten()
            .flat_map(|c| c.lineage.sources)
            .collect();
        out.extend(
            self.functions
                .iter()
                .chain(&self.table_functions)
                .filter(|f| metadata::text_function(dialect, f))
                .map(|f| ColumnRef {
                    schema: "pg_catalog".to_owned(),
                    table: metadata::FUNCTION_TABLE.to_owned(),
                    column: f.clone(),
                }),
        );
        out.sort();
        out.dedup();
        out
    }
}
