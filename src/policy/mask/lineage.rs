//! Column lineage: for each output column of a statement, the base-table
//! columns its values are computed from. Masking needs this because the
//! wire only names a column's origin for plain references; `lower(email)`,
//! `email || ''`, a sub-select, a CTE or a UNION branch all hide it.
//!
//! The analysis is conservative: a value computed by a function the
//! gateway does not know, or produced by a set-returning function, has an
//! *unknown* origin (it may read any table), and callers refuse or redact
//! it when the statement touches masked columns.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement, TableFactor, TableWithJoins, Visit, Visitor,
};

use super::metadata;
use crate::policy::builtins::function_tags;
use crate::policy::parse::SqlDialect;

pub use super::columns::{ColumnRef, Lineage, OutputColumn};

/// A table or view, as the catalog knows it.
#[derive(Debug, Clone)]
pub struct Relation {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<String>,
    /// For a view: its defining query.
    pub view: Option<String>,
}

/// What the lineage analysis needs to know about the database.
pub trait Catalog {
    /// The relation a (possibly schema-qualified) name resolves to.
    fn relation(&self, schema: Option<&str>, name: &str) -> Option<Relation>;

    /// The relations an unqualified name may be for this session (more
    /// than one: it changed its search path, and which one the server
    /// resolves depends on what the server kept of that).
    fn ambiguous(&self, _name: &str) -> Option<Vec<String>> {
        None
    }
}

/// Why lineage could not be computed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    /// A statement kind that returns no rows the analysis knows.
    #[error("no result columns to analyse")]
    NoResult,
}

/// Views expand into their definitions up to this depth.
const MAX_VIEW_DEPTH: usize = 8;

/// The lineage of each result column of `stmt`.
pub fn output_lineage(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
) -> Result<Vec<OutputColumn>, LineageError> {
    let a = Analyzer {
        dialect,
        catalog,
        depth: 0,
    };
    match stmt {
        Statement::Query(q) => Ok(a.query(q, &Scope::root())),
        Statement::Insert(ins) => match &ins.returning {
            Some(items) => {
                let rel = match &ins.table {
                    sqlparser::ast::TableObject::TableName(name) => {
                        let parts = object_parts(name);
                        match parts.as_slice() {
                            [t] => a.named(None, t, None, &Scope::root()),
                            [.., s, t] => a.named(Some(s), t, None, &Scope::root()),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let scope = Scope::root().with(rel.into_iter().collect());
                Ok(a.projection(items, &scope))
            }
            None => Err(LineageError::NoResult),
        },
        Statement::Update(u) => match &u.returning {
            Some(items) => {
                let scope = a.scope_of_from(std::slice::from_ref(&u.table), &Scope::root());
                Ok(a.projection(items, &scope))
            }
            None => Err(LineageError::NoResult),
        },
        Statement::Delete(d) => match &d.returning {
            Some(items) => {
                let from = match &d.from {
                    sqlparser::ast::FromTable::WithFromKeyword(t)
                    | sqlparser::ast::FromTable::WithoutKeyword(t) => t,
                };
                let scope = a.scope_of_from(from, &Scope::root());
                Ok(a.projection(items, &scope))
            }
            None => Err(LineageError::NoResult),
        },
        _ => Err(LineageError::NoResult),
    }
}

/// The columns of a table or view by name (through the view's
/// definition), `None` when the catalog does not know it.
pub fn relation_columns(
    name: &ObjectName,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
) -> Option<Vec<OutputColumn>> {
    let a = Analyzer {
        dialect,
        catalog,
        depth: 0,
    };
    let parts = object_parts(name);
    let rel = match parts.as_slice() {
        [t] => a.named(None, t, None, &Scope::root()),
        [.., s, t] => a.named(Some(s), t, None, &Scope::root()),
        _ => None,
    }?;
    Some(to_outputs(&rel.columns))
}

/// A named relation in scope: its alias and its columns' lineage.
#[derive(Debug, Clone)]
struct ScopeRel {
    alias: String,
    columns: Vec<(String, Lineage)>,
}

/// Relations visible to an expression: the current FROM list, then the
/// outer queries' (correlated sub-selects), and the CTEs in force.
#[derive(Debug, Clone, Default)]
struct Scope {
    rels: Vec<ScopeRel>,
    outer: Vec<ScopeRel>,
    ctes: HashMap<String, Vec<(String, Lineage)>>,
}

impl Scope {
    fn root() -> Self {
        Scope::default()
    }

    fn with(&self, rels: Vec<ScopeRel>) -> Scope {
        Scope {
            rels,
            outer: self.outer.clone(),
            ctes: self.ctes.clone(),
        }
    }

    /// The scope a sub-select sees: its own FROM, then ours.
    fn nested(&self) -> Scope {
        let mut outer = self.rels.clone();
        outer.extend(self.outer.iter().cloned());
        Scope {
            rels: Vec::new(),
            outer,
            ctes: self.ctes.clone(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &ScopeRel> {
        self.rels.iter().chain(self.outer.iter())
    }

    fn rel(&self, alias: &str) -> Option<&ScopeRel> {
        self.all().find(|r| r.alias == alias)
    }

    /// An unqualified column name. Nearest scope first: the current FROM
    /// list, then the outer ones; where several relations of one level
    /// have the name (a column merged by USING or NATURAL, whose value
    /// may come from either side), the union of their lineages.
    fn column(&self, name: &str) -> Option<Lineage> {
        for rels in [&self.rels, &self.outer] {
            let mut found: Option<Lineage> = None;
            for r in rels {
                if let Some((_, l)) = r.columns.iter().find(|(c, _)| c == name) {
                    found.get_or_insert_with(Lineage::default).extend(l);
                }
            }
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// Schemas of the system catalogs: their columns are never a DBA's data.
pub(crate) const SYSTEM_SCHEMAS: &[&str] = &["pg_catalog", "information_schema"];

/// Built-in functions that read the rows of tables named by their
/// arguments (or a query text): what they return is of unknown origin,
/// and a statement calling one reads whatever it names.
pub(crate) const TABLE_READERS: &[&str] = &[
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "ts_stat",
];

/// Whether a function (by its last name part) reads tables it names.
pub(crate) fn reads_tables(name: &str) -> bool {
    TABLE_READERS.contains(&name.to_ascii_lowercase().as_str())
}

/// An identifier as the server compares it: unquoted folded to lower case.
pub(crate) fn norm(ident: &sqlparser::ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}

/// The parts of a dotted name, each normalised.
pub(crate) fn object_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| p.as_ident().map(norm).unwrap_or_default())
        .collect()
}

struct Analyzer<'a> {
    dialect: SqlDialect,
    catalog: &'a dyn Catalog,
    depth: usize,
}

impl Analyzer<'_> {
    fn query(&self, q: &Query, outer: &Scope) -> Vec<OutputColumn> {
        let mut scope = outer.clone();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = norm(&cte.alias.name);
                let mut cols = if with.recursive {
                    // Seed the recursive reference with the non-recursive
                    // branch, then iterate.
                    let seed = match cte.query.body.as_ref() {
                        SetExpr::SetOperation { left, .. } => self.set_expr(left, &scope),
                        other => self.set_expr(other, &scope),
                    };
                    let mut s = scope.clone();
                    s.ctes.insert(name.clone(), rename(&seed, &cte.alias));
                    merge_positional(&seed, &self.set_expr(&cte.query.body, &s))
                } else {
                    self.set_expr(&cte.query.body, &scope)
                };
                if with.recursive {
                    // Iterate until the recursive references add nothing.
                    for _ in 0..8 {
                        let mut s = scope.clone();
                        s.ctes.insert(name.clone(), rename(&cols, &cte.alias));
                        let next = self.set_expr(&cte.query.body, &s);
                        let merged = merge_positional(&cols, &next);
                        if merged == cols {
                            break;
                        }
                        cols = merged;
                    }
                }
                scope.ctes.insert(name, rename(&cols, &cte.alias));
            }
        }
        self.set_expr(&q.body, &scope)
    }

    fn set_expr(&self, body: &SetExpr, scope: &Scope) -> Vec<OutputColumn> {
        match body {
            SetExpr::Select(s) => self.select(s, scope),
            SetExpr::Query(q) => self.query(q, scope),
            SetExpr::SetOperation { left, right, .. } => {
                let l = self.set_expr(left, scope);
                let r = self.set_expr(right, scope);
                merge_positional(&l, &r)
            }
            SetExpr::Values(v) => {
                let width = v.rows.first().map_or(0, |r| r.len());
                (0..width)
                    .map(|i| {
                        let mut lineage = Lineage::default();
                        for row in &v.rows {
                            if let Some(e) = row.get(i) {
                                lineage.extend(&self.output_expr(e, scope));
                            }
                        }
                        OutputColumn {
                            name: format!("column{}", i + 1),
                            lineage,
                            plain: false,
                        }
                    })
                    .collect()
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                output_lineage(s, self.dialect, self.catalog).unwrap_or_default()
            }
            SetExpr::Table(t) => {
                let name = t.table_name.clone().unwrap_or_default();
                let schema = t.schema_name.as_deref();
                match self.named(schema, &name.to_lowercase(), None, scope) {
                    Some(rel) => rel
                        .columns
                        .into_iter()
                        .map(|(n, l)| OutputColumn {
                            name: n,
                            lineage: l,
                            plain: true,
                        })
                        .collect(),
                    None => vec![unknown_column(format!("unknown table {name}"))],
                }
            }
        }
    }

    fn select(&self, s: &Select, outer: &Scope) -> Vec<OutputColumn> {
        let scope = self.scope_of_from(&s.from, outer);
        self.projection(&s.projection, &scope)
    }

    fn projection(&self, items: &[SelectItem], scope: &Scope) -> Vec<OutputColumn> {
        let mut out = Vec::new();
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) => out.push(OutputColumn {
                    name: expr_name(e),
                    lineage: self.output_expr(e, scope),
                    plain: is_plain(e, self.dialect),
                }),
                SelectItem::ExprWithAlias { expr, alias } => out.push(OutputColumn {
                    name: self.col(alias),
                    lineage: self.output_expr(expr, scope),
                    plain: is_plain(expr, self.dialect),
                }),
                SelectItem::ExprWithAliases { expr, aliases } => {
                    for a in aliases {
                        out.push(OutputColumn {
                            name: norm(a),
                            lineage: self.expr(expr, scope),
                            plain: false,
                        });
                    }
                }
                SelectItem::Wildcard(_) => {
                    for r in &scope.rels {
                        out.extend(r.columns.iter().map(|(n, l)| OutputColumn {
                            name: n.clone(),
                            lineage: l.clone(),
                            plain: true,
                        }));
                    }
                }
                SelectItem::QualifiedWildcard(kind, _) => match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(name) => {
                        let parts = object_parts(name);
                        match parts.last().and_then(|a| scope.rel(a)) {
                            Some(r) => out.extend(r.columns.iter().map(|(n, l)| OutputColumn {
                                name: n.clone(),
                                lineage: l.clone(),
                                plain: true,
                            })),
                            None => out.push(unknown_column(format!("unknown relation {name}"))),
                        }
                    }
                    SelectItemQualifiedWildcardKind::Expr(e) => out.push(OutputColumn {
                        name: "?column?".into(),
                        lineage: self.expr(e, scope),
                        plain: false,
                    }),
                },
            }
        }
        out
    }

    /// The scope of a FROM list; LATERAL items see the items before them.
    fn scope_of_from(&self, from: &[TableWithJoins], outer: &Scope) -> Scope {
        let mut scope = outer.nested();
        scope.outer = outer
            .rels
            .iter()
            .chain(outer.outer.iter())
            .cloned()
            .collect();
        for twj in from {
            self.factor_into(&twj.relation, &mut scope);
            for j in &twj.joins {
                self.factor_into(&j.relation, &mut scope);
            }
        }
        scope
    }

    fn factor_into(&self, tf: &TableFactor, scope: &mut Scope) {
        let rel = match tf {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let parts = object_parts(name);
                let (schema, table) = match parts.as_slice() {
                    [t] => (None, t.clone()),
                    [s, t] => (Some(s.as_str()), t.clone()),
                    [_, s, t] => (Some(s.as_str()), t.clone()),
                    _ => (None, String::new()),
                };
                match self.named(schema, &table, alias.as_ref(), scope) {
                    Some(r) => r,
                    None => ScopeRel {
                        alias: alias.as_ref().map_or(table.clone(), |a| norm(&a.name)),
                        columns: Vec::new(),
                    },
                }
            }
            TableFactor::Table { name, alias, .. } | TableFactor::Function { name, alias, .. } => {
                let text = match object_parts(name).as_slice() {
                    [n] | [_, n] if metadata::text_function(self.dialect, n) => Some(n.clone()),
                    _ => None,
                };
                match text {
                    // A definition function in FROM: one row, its text.
                    Some(n) => {
                        let mut rel = srf_rel(alias.as_ref(), &n, "");
                        for c in &mut rel.columns {
                            c.1 = Lineage::column(ColumnRef {
                                schema: "pg_catalog".to_owned(),
                                table: metadata::FUNCTION_TABLE.to_owned(),
                                column: n.clone(),
                            });
                        }
                        rel
                    }
                    None => {
                        // A set-returning function: rows from anywhere.
                        let why = format!("set-returning function {name}");
                        srf_rel(alias.as_ref(), &name.to_string(), &why)
                    }
                }
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                // Only a LATERAL sub-select sees the FROM items before it;
                // letting any other see them would let a sibling's column
                // shadow the outer column the server reads.
                let seen = if *lateral {
                    scope.clone()
                } else {
                    Scope {
                        rels: Vec::new(),
                        outer: scope.outer.clone(),
                        ctes: scope.ctes.clone(),
                    }
                };
                let cols = self.query(subquery, &seen);
                let cols: Vec<(String, Lineage)> =
                    cols.into_iter().map(|c| (c.name, c.lineage)).collect();
                ScopeRel {
                    alias: alias.as_ref().map_or(String::new(), |a| norm(&a.name)),
                    columns: match alias {
                        Some(a) => rename(&to_outputs(&cols), a),
                        None => cols,
                    },
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => {
                self.factor_into(&table_with_joins.relation, scope);
                for j in &table_with_joins.joins {
                    self.factor_into(&j.relation, scope);
                }
                return;
            }
            TableFactor::UNNEST {
                alias, array_exprs, ..
            } => {
                let mut l = Lineage::default();
                for e in array_exprs {
                    l.extend(&self.output_expr(e, scope));
                }
                let mut rel = srf_rel(alias.as_ref(), "unnest", "");
                for c in &mut rel.columns {
                    c.1 = l.clone();
                }
                if rel.columns.is_empty() {
                    rel.columns.push(("unnest".into(), l));
                }
                rel
            }
            other => ScopeRel {
                alias: String::new(),
                columns: vec![(
                    "?column?".into(),
                    Lineage::unknown(format!("unsupported FROM item {other}")),
                )],
            },
        };
        scope.rels.push(rel);
    }

    /// A table, view or CTE by name.
    fn named(
        &self,
        schema: Option<&str>,
        name: &str,
        alias: Option<&sqlparser::ast::TableAlias>,
        scope: &Scope,
    ) -> Option<ScopeRel> {
        let alias_name = alias.map_or(name.to_owned(), |a| norm(&a.name));
        if schema.is_none() {
            if let Some(cols) = scope.ctes.get(name) {
                let cols = match alias {
                    Some(a) => rename(&to_outputs(cols), a),
                    None => cols.clone(),
                };
                return Some(ScopeRel {
                    alias: alias_name,
                    columns: cols,
                });
            }
        }
        let rel = self.catalog.relation(schema, name)?;
        let columns: Vec<(String, Lineage)> = match &rel.view {
            Some(sql) if self.depth < MAX_VIEW_DEPTH => self.view(&rel, sql),
            Some(_) => rel
                .columns
                .iter()
                .map(|c| {
                    (
                        c.clone(),
                        Lineage::unknown(format!("view {} nested too deep", rel.name)),
                    )
                })
                .collect(),
            None => rel
                .columns
                .iter()
                .map(|c| {
                    (
                        c.clone(),
                        Lineage::column(ColumnRef {
                            schema: rel.schema.clone(),
                            table: rel.name.clone(),
                            column: c.clone(),
                        }),
                    )
                })
                .collect(),
        };
        let columns = match alias {
            Some(a) if !a.columns.is_empty() => rename(&to_outputs(&columns), a),
            _ => columns,
        };
        Some(ScopeRel {
            alias: alias_name,
            columns,
        })
    }

    /// A view's columns: its definition analysed, named by the catalog.
    fn view(&self, rel: &Relation, sql: &str) -> Vec<(String, Lineage)> {
        let inner = Analyzer {
            dialect: self.dialect,
            catalog: self.catalog,
            depth: self.depth + 1,
        };
        let parsed = sqlparser::parser::Parser::parse_sql(self.dialect.dialect(), sql);
        let outputs = match parsed.as_deref() {
            Ok([stmt]) => output_lineage(stmt, self.dialect, self.catalog)
                .ok()
                .filter(|_| inner.depth > 0),
            _ => None,
        };
        match outputs {
            Some(outs) if outs.len() == rel.columns.len() => rel
                .columns
                .iter()
                .zip(outs)
                .map(|(n, o)| (n.clone(), o.lineage))
                .collect(),
            _ => rel
                .columns
                .iter()
                .map(|c| {
                    (
                        c.clone(),
                        Lineage::unknown(format!("view {} cannot be read", rel.name)),
                    )
                })
                .collect(),
        }
    }

    /// A column name as the server compares it: MySQL's are
    /// case-insensitive even when quoted.
    fn col(&self, i: &sqlparser::ast::Ident) -> String {
        match self.dialect {
            SqlDialect::Mysql => i.value.to_lowercase(),
            SqlDialect::Postgres => norm(i),
        }
    }

    /// The lineage of an output expression, marked when it transforms
    /// what it reads.
    fn output_expr(&self, e: &Expr, scope: &Scope) -> Lineage {
        let mut l = self.expr(e, scope);
        // Along the value's own path only: what a condition or an
        // argument reads does not make the value computed.
        l.transformed = !self.carries(e, scope);
        l
    }

    /// Whether an expression's value is one of its sources' values whole:
    /// a column, a definition function, or those chosen by CASE,
    /// COALESCE, min/max, collected by array_agg, or cast.
    fn carries(&self, e: &Expr, scope: &Scope) -> bool {
        match e {
            // A column (not a whole row, whose text form quotes its
            // fields in ways a scrubber of SQL does not read).
            Expr::Identifier(i) => scope.column(&self.col(i)).is_some_and(|l| !l.transformed),
            Expr::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| self.col(p)).collect();
                match parts.as_slice() {
                    [.., r, c] => scope
                        .rel(r)
                        .and_then(|r| r.columns.iter().find(|(n, _)| n == c))
                        .is_some_and(|(_, l)| !l.transformed),
                    _ => false,
                }
            }
            Expr::Nested(x) => self.carries(x, scope),
            // To another text type only: `::bytea` would show the text's
            // bytes in hex, past a scrubber of SQL.
            Expr::Cast {
                expr, data_type, ..
            } => {
                let ty = data_type.to_string().to_ascii_lowercase();
                [
                    "text",
                    "varchar",
                    "char",
                    "character",
                    "name",
                    "bpchar",
                    "string",
                ]
                .iter()
                .any(|t| ty.starts_with(t))
                    && !ty.contains("[]")
                    && self.carries(expr, scope)
            }
            Expr::Value(_) => true,
            Expr::Case {
                conditions,
                else_result,
                ..
            } => {
                conditions.iter().all(|w| self.carries(&w.result, scope))
                    && else_result.as_ref().is_none_or(|x| self.carries(x, scope))
            }
            Expr::Function(f) => {
                if text_function_call(e, self.dialect).is_some() {
                    return true;
                }
                let name = object_parts(&f.name).pop().unwrap_or_default();
                let choosing = matches!(
                    name.as_str(),
                    "array_agg" | "min" | "max" | "coalesce" | "any_value"
                );
                let sqlparser::ast::FunctionArguments::List(l) = &f.args else {
                    return false;
                };
                choosing
                    && l.args.iter().all(|a| match a {
                        sqlparser::ast::FunctionArg::Unnamed(
                            sqlparser::ast::FunctionArgExpr::Expr(x),
                        ) => self.carries(x, scope),
                        _ => false,
                    })
            }
            _ => false,
        }
    }

    /// The lineage of an expression: every column it reads, through every
    /// operator, built-in function, CASE, cast, aggregate, window and
    /// sub-select.
    fn expr(&self, e: &Expr, scope: &Scope) -> Lineage {
        let mut v = ExprWalker {
            a: self,
            scope,
            lineage: Lineage::default(),
            nested: 0,
            skip: 0,
        };
        let _ = e.visit(&mut v);
        v.lineage
    }
}

fn unknown_column(why: String) -> OutputColumn {
    OutputColumn {
        name: "?column?".into(),
        lineage: Lineage::unknown(why),
        plain: false,
    }
}

fn srf_rel(alias: Option<&sqlparser::ast::TableAlias>, name: &str, why: &str) -> ScopeRel {
    let l = if why.is_empty() {
        Lineage::default()
    } else {
        Lineage::unknown(why)
    };
    let columns = match alias {
        Some(a) if !a.columns.is_empty() => a
            .columns
            .iter()
            .map(|c| (norm(&c.name), l.clone()))
            .collect(),
        Some(a) => vec![(norm(&a.name), l)],
        None => vec![(name.to_lowercase(), l)],
    };
    ScopeRel {
        alias: alias.map_or(name.to_lowercase(), |a| norm(&a.name)),
        columns,
    }
}

fn to_outputs(cols: &[(String, Lineage)]) -> Vec<OutputColumn> {
    cols.iter()
        .map(|(n, l)| OutputColumn {
            name: n.clone(),
            lineage: l.clone(),
            plain: true,
        })
        .collect()
}

/// Column names from an alias's column list, where it gives them.
fn rename(cols: &[OutputColumn], alias: &sqlparser::ast::TableAlias) -> Vec<(String, Lineage)> {
    cols.iter()
        .enumerate()
        .map(|(i, c)| {
            let name = alias
                .columns
                .get(i)
                .map_or(c.name.clone(), |a| norm(&a.name));
            (name, c.lineage.clone())
        })
        .collect()
}

/// Set operations and recursive CTEs: column i comes from column i of
/// every branch.
fn merge_positional(l: &[OutputColumn], r: &[OutputColumn]) -> Vec<OutputColumn> {
    let n = l.len().max(r.len());
    (0..n)
        .map(|i| {
            let mut c = l.get(i).or(r.get(i)).cloned().expect("i < max len");
            if let Some(other) = r.get(i) {
                c.lineage.extend(&other.lineage);
                c.plain = false;
            }
            c
        })
        .collect()
}

fn expr_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => norm(i),
        Expr::CompoundIdentifier(parts) => parts.last().map(norm).unwrap_or_default(),
        Expr::Function(f) => f.name.to_string().to_lowercase(),
        Expr::Cast { expr, .. } => expr_name(expr),
        _ => "?column?".into(),
    }
}

/// A plain reference: a column, or a metadata function's text itself
/// (masked as the text it is, not as a value derived from one).
fn is_plain(e: &Expr, dialect: SqlDialect) -> bool {
    matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
        || text_function_call(e, dialect).is_some()
}

/// `pg_get_viewdef(...)` and the other functions returning definitions
/// or statements: the function's name.
fn text_function_call(e: &Expr, dialect: SqlDialect) -> Option<String> {
    let Expr::Function(f) = e else { return None };
    let parts = object_parts(&f.name);
    let name = match parts.as_slice() {
        [n] => n,
        [s, n] if s == "pg_catalog" => n,
        _ => return None,
    };
    metadata::text_function(dialect, name).then(|| name.clone())
}

mod walker;
use walker::ExprWalker;

#[cfg(test)]
mod tests;
