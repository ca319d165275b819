//! What masking makes of a statement before it runs: the plan of its
//! output columns (masked on the wire as rows pass), or a refusal — an
//! output whose origin cannot be known while it touches masked columns
//! (unless the rule redacts such columns), a filter on a masked column
//! (unless the rule allows predicates), masked values leaving by a path
//! that is not a result set the relay rewrites (COPY ... TO, a cursor
//! declared or a statement prepared in SQL), or a relation the catalog
//! lacks. Identities a rule exempts are never asked.

use std::ops::ControlFlow;

use sqlparser::ast::{CopySource, SelectItem, Statement, Visit, Visitor};

use super::lineage::{
    object_parts, output_lineage, relation_columns, Catalog, ColumnRef, OutputColumn,
};
use super::metadata::{self, NamedTexts};
use super::predicates::{join_constraint, refuse_predicates};
pub use super::refusal::MaskRefusal;
use super::relations::Relations;
use super::rules::{plan, ColumnPlan, MaskRule, OnUnknown, Plan};
use super::storing::stores_masked;
use crate::policy::parse::SqlDialect;

/// A statement that may run: the masking plan of its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// One entry per output column (`None`: no masked column is read).
    pub plan: Option<Vec<ColumnPlan>>,
    /// The output columns' names (with `plan`).
    pub names: Vec<String>,
    /// The statement reads masked columns.
    pub reads_masked: bool,
    /// Its result is masked by column names instead (a plan).
    pub named: Option<NamedTexts>,
}

/// Checks one parsed statement against the masks that apply. `opaque`:
/// the statement runs code whose reads are unknown (a user function, a
/// procedure, an anonymous block).
pub fn check(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
    rules: &[&MaskRule],
    opaque: bool,
) -> Result<Checked, MaskRefusal> {
    // Lists of names (tables, databases, views): the database a SHOW
    // names is not a relation whose columns it reads.
    if matches!(
        stmt,
        Statement::ShowTables { .. }
            | Statement::ShowDatabases { .. }
            | Statement::ShowSchemas { .. }
            | Statement::ShowViews { .. }
    ) {
        return Ok(Checked {
            plan: None,
            names: Vec::new(),
            reads_masked: false,
            named: None,
        });
    }
    // A plan holds no row values but quotes literals (masked by name);
    // what the explained statement filters on is still a question.
    if let Statement::Explain {
        statement, analyze, ..
    } = stmt
    {
        return check_plan(statement, *analyze, dialect, catalog, rules);
    }
    let rels = Relations::of(stmt);
    refuse_relations(&rels, dialect, catalog)?;
    // A statement that names a definition or statement-text column (or a
    // function returning one) anywhere is about them: the built-in rules
    // redact what they cannot follow there (a set-returning function over
    // a definition), and its errors are scrubbed (a failed cast quotes
    // the text).
    let named = rules.iter().any(|r| r.builtin()) && names_any(stmt, metadata::names(dialect));
    let redacting: Vec<MaskRule> = if named {
        rules
            .iter()
            .filter(|r| r.builtin())
            .map(|r| MaskRule {
                on_unknown: OnUnknown::Redact,
                ..(*r).clone()
            })
            .collect()
    } else {
        Vec::new()
    };
    let rules: Vec<&MaskRule> = rules
        .iter()
        .map(|r| match redacting.iter().find(|a| a.name == r.name) {
            Some(a) => a,
            None => *r,
        })
        .collect();
    let rules = rules.as_slice();
    // A function that reads tables it names reads what it names.
    let opaque = opaque || rels.table_reader;
    let touched = rels.columns(dialect, catalog);
    let masked_touched: Vec<&ColumnRef> = touched
        .iter()
        .filter(|c| rules.iter().any(|r| r.covers(c)))
        .collect();
    let user_touched = masked_touched
        .iter()
        .any(|c| rules.iter().any(|r| !r.builtin() && r.covers(c)));
    if masked_touched.is_empty() && !opaque {
        return Ok(Checked {
            plan: None,
            names: Vec::new(),
            reads_masked: false,
            named: None,
        });
    }
    if let Some((what, why)) = stores_masked(stmt, dialect, catalog, rules) {
        return Err(MaskRefusal {
            message: format!("{what} would store values of {why}, where they are no longer masked"),
            hint: "masked values may be read, masked, but not copied elsewhere".to_owned(),
            stale: false,
        });
    }
    let outputs = result_columns(stmt, dialect, catalog);
    match plan(rules, &outputs, &touched, opaque) {
        Plan::Refuse { column, why, rule } => Err(MaskRefusal {
            message: format!(
                "result column \"{column}\" has an origin sqlgate cannot follow ({why}) in a statement that reads columns masked by rule \"{rule}\""
            ),
            hint: "select the columns you need by name, without unknown functions".to_owned(),
            stale: why.contains("not in the catalog"),
        }),
        Plan::Columns(cols) => {
            let masked = outputs.iter().zip(&cols).find_map(|(col, p)| match p {
                ColumnPlan::Clear => None,
                ColumnPlan::Masked { rule, sources, .. } => Some(format!(
                    "\"{}\" carries values of {} masked by rule \"{}\"",
                    col.name,
                    sources
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    rules[*rule].name
                )),
                ColumnPlan::RedactUnknown { why } => Some(format!(
                    "\"{}\" has an origin sqlgate cannot follow ({why})",
                    col.name
                )),
            });
            if let (Some(what), Some(path)) = (masked, unmasked_path(stmt)) {
                return Err(MaskRefusal {
                    message: format!("{path} would return masked values: result column {what}"),
                    hint: "masked values are only returned in result sets, where sqlgate masks them; run the SELECT itself".to_owned(),
                    stale: false,
                });
            }
            refuse_predicates(stmt, dialect, catalog, rules)?;
            if wildcard_unreliable(stmt) {
                // Which column is where is not certain: fail-closed by
                // the wire's metadata alone.
                return Ok(Checked {
                    plan: None,
                    names: Vec::new(),
                    reads_masked: true,
                    named: None,
                });
            }
            // Only the built-in rules' columns touched (a catalog query)
            // and none of them in the result: its errors need no scrub.
            let reads_masked =
                user_touched || named || cols.iter().any(|c| *c != ColumnPlan::Clear);
            Ok(Checked {
                plan: Some(cols),
                names: outputs.iter().map(|o| o.name.clone()).collect(),
                reads_masked,
                named: None,
            })
        }
    }
}

/// Whether a statement names any of `names` (lower case) as a column or
/// a function, anywhere.
fn names_any(stmt: &Statement, names: &[String]) -> bool {
    use sqlparser::ast::Expr;
    struct Finder<'n>(&'n [String], bool);
    impl Finder<'_> {
        fn check(&mut self, name: &str) {
            if self.0.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                self.1 = true;
            }
        }
    }
    impl Visitor for Finder<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(i) => self.check(&i.value),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.check(&last.value);
                    }
                }
                Expr::Function(f) => {
                    if let Some(last) = object_parts(&f.name).last() {
                        self.check(last);
                    }
                }
                _ => {}
            }
            if self.1 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn pre_visit_table_factor(&mut self, t: &sqlparser::ast::TableFactor) -> ControlFlow<()> {
            if let sqlparser::ast::TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | sqlparser::ast::TableFactor::Function { name, .. } = t
            {
                if let Some(last) = object_parts(name).last() {
                    self.check(last);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut f = Finder(names, false);
    let _ = stmt.visit(&mut f);
    f.1
}

/// Refusals by the relations a statement names: planner statistics,
/// relations the catalog lacks, functions listing other sessions'
/// statements unscrubbed.
fn refuse_relations(
    rels: &Relations,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
) -> Result<(), MaskRefusal> {
    if let Some(name) = rels.statistics() {
        return Err(MaskRefusal {
            message: format!(
                "{name} shows values of table columns (planner statistics), masked ones included"
            ),
            hint: "ask someone the masking rules exempt".to_owned(),
            stale: false,
        });
    }
    if let Some((name, candidates)) = rels.ambiguous(catalog) {
        return Err(MaskRefusal {
            message: format!(
                "relation {name} may be any of {} for this session (its search_path changed), so masking cannot tell which columns it reads",
                candidates.join(", ")
            ),
            hint: format!("qualify it with its schema ({})", candidates[0]),
            stale: false,
        });
    }
    if let Some(name) = rels.unknown(catalog) {
        return Err(MaskRefusal {
            message: format!(
                "relation {name} is not in sqlgate's catalog of this target, so its columns cannot be checked against masking rules"
            ),
            hint: "if it was created a moment ago, retry: the catalog is being read again".to_owned(),
            stale: true,
        });
    }
    if let Some(name) = rels
        .table_functions
        .iter()
        .chain(&rels.functions)
        .find(|f| metadata::text_set_function(dialect, f))
    {
        return Err(MaskRefusal {
            message: format!(
                "{name}() lists other sessions' statements, whose literals may be masked values"
            ),
            hint: "read pg_stat_activity or the pg_stat_statements view: sqlgate replaces the literals of their statement texts".to_owned(),
            stale: false,
        });
    }
    Ok(())
}

/// EXPLAIN (and MariaDB's ANALYZE): the plan's column is masked by name
/// (literals out); the explained statement's relations and conditions
/// are checked as if it ran (with ANALYZE it does: its row counts answer
/// its conditions), and with ANALYZE what it would store.
fn check_plan(
    inner: &Statement,
    analyze: bool,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
    rules: &[&MaskRule],
) -> Result<Checked, MaskRefusal> {
    let rels = Relations::of(inner);
    refuse_relations(&rels, dialect, catalog)?;
    let touched = rels.columns(dialect, catalog);
    let user_touched = touched
        .iter()
        .any(|c| rules.iter().any(|r| !r.builtin() && r.covers(c)));
    if analyze {
        if let Some((what, why)) = stores_masked(inner, dialect, catalog, rules) {
            return Err(MaskRefusal {
                message: format!(
                    "{what} would store values of {why}, where they are no longer masked"
                ),
                hint: "masked values may be read, masked, but not copied elsewhere".to_owned(),
                stale: false,
            });
        }
    }
    refuse_predicates(inner, dialect, catalog, rules)?;
    Ok(Checked {
        plan: None,
        names: Vec::new(),
        reads_masked: user_touched,
        named: Some(NamedTexts::Plan(dialect)),
    })
}

/// A `*` or `t.*` over joins whose column lists the lineage does not
/// model exactly (`USING` and `NATURAL` merge columns; table functions
/// add ordinality and record columns): positions may shift.
fn wildcard_unreliable(stmt: &Statement) -> bool {
    use sqlparser::ast::{JoinConstraint, TableFactor};
    struct Finder(bool);
    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            let sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() else {
                return ControlFlow::Continue(());
            };
            let wildcard = s.projection.iter().any(|p| {
                matches!(
                    p,
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                )
            });
            if !wildcard {
                return ControlFlow::Continue(());
            }
            let odd_factor = |f: &TableFactor| {
                matches!(
                    f,
                    TableFactor::Table { args: Some(_), .. }
                        | TableFactor::UNNEST { .. }
                        | TableFactor::Function { .. }
                        | TableFactor::TableFunction { .. }
                )
            };
            for twj in &s.from {
                if odd_factor(&twj.relation) {
                    self.0 = true;
                }
                for j in &twj.joins {
                    if odd_factor(&j.relation) {
                        self.0 = true;
                    }
                    if matches!(
                        join_constraint(&j.join_operator),
                        Some(JoinConstraint::Using(_) | JoinConstraint::Natural)
                    ) {
                        self.0 = true;
                    }
                }
            }
            if self.0 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    let mut f = Finder(false);
    let _ = stmt.visit(&mut f);
    if f.0 {
        return true;
    }
    // A parenthesised join anywhere with USING or NATURAL, in a statement
    // with a `*` anywhere.
    struct Nested {
        merging: bool,
        wildcard: bool,
    }
    impl Visitor for Nested {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::NestedJoin {
                table_with_joins, ..
            } = t
            {
                if table_with_joins.joins.iter().any(|j| {
                    matches!(
                        join_constraint(&j.join_operator),
                        Some(JoinConstraint::Using(_) | JoinConstraint::Natural)
                    )
                }) {
                    self.merging = true;
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, q: &sqlparser::ast::Query) -> ControlFlow<()> {
            if let sqlparser::ast::SetExpr::Select(s) = q.body.as_ref() {
                if s.projection.iter().any(|p| {
                    matches!(
                        p,
                        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                    )
                }) {
                    self.wildcard = true;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut n = Nested {
        merging: false,
        wildcard: false,
    };
    let _ = stmt.visit(&mut n);
    n.merging && n.wildcard
}

/// Paths out of the database the relay does not mask rows on: COPY TO
/// (a copy stream), statements prepared in SQL (their rows come later, to
/// EXECUTE, whose text does not say what they return), EXPLAIN ANALYZE.
/// (A cursor's plan is remembered by the session for its FETCHes.)
fn unmasked_path(stmt: &Statement) -> Option<&'static str> {
    match stmt {
        Statement::Copy { .. } => Some("COPY"),
        Statement::Prepare { .. } => Some("a prepared statement"),
        Statement::Explain { .. } => Some("EXPLAIN"),
        _ => None,
    }
}

/// What a statement returns to the client: a query's columns, RETURNING,
/// COPY ... TO STDOUT, a cursor's query, PREPARE's statement.
fn result_columns(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
) -> Vec<OutputColumn> {
    match stmt {
        Statement::Copy {
            source, to: true, ..
        } => match source {
            CopySource::Query(q) => {
                output_lineage(&Statement::Query(q.clone()), dialect, catalog).unwrap_or_default()
            }
            CopySource::Table { table_name, .. } => {
                relation_columns(table_name, dialect, catalog).unwrap_or_default()
            }
        },
        Statement::Declare { stmts } => stmts
            .iter()
            .filter_map(|d| d.for_query.as_ref())
            .flat_map(|q| {
                output_lineage(&Statement::Query(q.clone()), dialect, catalog).unwrap_or_default()
            })
            .collect(),
        Statement::Prepare { statement, .. } => result_columns(statement, dialect, catalog),
        Statement::Explain {
            statement,
            analyze: true,
            ..
        } => result_columns(statement, dialect, catalog),
        other => output_lineage(other, dialect, catalog).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::mask::catalog::CatalogSnapshot;
    use crate::policy::mask::functions::MaskFunction;
    use crate::policy::mask::rules::{column_pattern, OnUnknown};

    fn snapshot() -> CatalogSnapshot {
        let mut rows = Vec::new();
        for (oid, table, cols, view) in [
            ("1", "customers", vec!["id", "name", "email", "ssn"], None),
            ("2", "orders", vec!["id", "customer_id", "total"], None),
            (
                "3",
                "v_people",
                vec!["who", "mail"],
                Some("SELECT name, lower(email) FROM customers"),
            ),
            // The system catalogs, as the snapshot holds them.
            (
                "1259",
                "pg_class",
                vec!["oid", "relname", "relnamespace", "relkind", "relpartbound"],
                None,
            ),
            ("2615", "pg_namespace", vec!["oid", "nspname"], None),
        ] {
            for (i, c) in cols.iter().enumerate() {
                rows.push(vec![
                    Some(oid.to_owned()),
                    Some(
                        if oid.len() > 1 {
                            "pg_catalog"
                        } else {
                            "public"
                        }
                        .to_owned(),
                    ),
                    Some(table.to_owned()),
                    Some("r".to_owned()),
                    Some((i + 1).to_string()),
                    Some(c.to_string()),
                    view.map(String::from),
                ]);
            }
        }
        CatalogSnapshot::from_pg_rows(&rows, vec!["public".into()])
    }

    fn rule() -> MaskRule {
        MaskRule {
            name: "pii".into(),
            columns: vec![
                column_pattern("*.customers.email").unwrap(),
                column_pattern("*.customers.ssn").unwrap(),
            ],
            function: MaskFunction::Redact,
            except_users: vec![],
            except_groups: vec![],
            targets: vec!["*".into()],
            predicates_allowed: false,
            on_unknown: OnUnknown::Refuse,
            origin: "t".into(),
        }
    }

    fn parse_one(dialect: SqlDialect, sql: &str) -> Option<Statement> {
        let mut v = sqlparser::parser::Parser::parse_sql(dialect.dialect(), sql).ok()?;
        (v.len() == 1).then(|| v.remove(0))
    }

    fn verdict(sql: &str) -> Result<Checked, MaskRefusal> {
        let stmt = parse_one(SqlDialect::Postgres, sql).unwrap();
        let opaque = sql.contains("my_func");
        check(&stmt, SqlDialect::Postgres, &snapshot(), &[&rule()], opaque)
    }

    /// Which output columns are masked (true) by position.
    fn masked(sql: &str) -> Vec<bool> {
        let checked = verdict(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        checked
            .plan
            .unwrap_or_default()
            .iter()
            .map(|p| !matches!(p, ColumnPlan::Clear))
            .collect()
    }

    #[test]
    fn masked_values_are_planned_through_every_construct() {
        for (sql, expected) in [
            ("SELECT ssn FROM customers", vec![true]),
            ("SELECT * FROM customers", vec![false, false, true, true]),
            ("SELECT lower(email) FROM customers", vec![true]),
            ("SELECT email || '' FROM customers", vec![true]),
            (
                "SELECT id, (SELECT max(ssn) FROM customers) FROM orders",
                vec![false, true],
            ),
            (
                "WITH x AS (SELECT ssn FROM customers) SELECT * FROM x",
                vec![true],
            ),
            (
                "SELECT name FROM customers UNION ALL SELECT email FROM customers",
                vec![true],
            ),
            ("SELECT row_to_json(c) FROM customers c", vec![true]),
            ("SELECT c::text FROM customers c", vec![true]),
            ("SELECT (customers.*)::text FROM customers", vec![true]),
            ("SELECT row(c.*) FROM customers c", vec![true]),
            ("SELECT who, mail FROM v_people", vec![false, true]),
            (
                "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING id, ssn",
                vec![false, true],
            ),
            (
                "DECLARE c CURSOR FOR SELECT name, email FROM customers",
                vec![false, true],
            ),
        ] {
            assert_eq!(masked(sql), expected, "{sql}");
        }
    }

    #[test]
    fn refused_paths_and_predicates() {
        for sql in [
            // Comparing, deduplicating, grouping by position, bounding.
            "SELECT name FROM customers UNION SELECT email FROM customers",
            "SELECT email FROM customers INTERSECT SELECT 'x'",
            "SELECT DISTINCT lower(email) FROM customers",
            "SELECT DISTINCT ON (ssn) id FROM customers",
            "SELECT email LIKE 'a%', count(*) FROM customers GROUP BY 1",
            "SELECT 1 FROM generate_series(1, 100) LIMIT (SELECT ascii(ssn) FROM customers)",
            "SELECT g FROM customers c, generate_series(1, ascii(c.ssn)) g",
            "SELECT my_func(id) FROM customers",
            "SELECT most_common_vals FROM pg_stats WHERE tablename = 'customers'",
            "SELECT * FROM pg_catalog.pg_statistic",
            "COPY customers TO STDOUT",
            "COPY (SELECT ssn FROM customers) TO STDOUT",
            "SELECT name FROM customers WHERE ssn LIKE '900-%'",
            "SELECT name FROM customers ORDER BY ssn",
            "INSERT INTO orders (id) SELECT length(ssn) FROM customers",
            "UPDATE orders SET total = (SELECT max(email) FROM customers)",
            "UPDATE orders o SET total = c.ssn FROM customers c WHERE c.id = o.customer_id",
            "CREATE TABLE x AS SELECT email FROM customers",
            "SELECT ssn INTO TEMP x FROM customers",
            "SELECT set_config('a.b', ssn, false) FROM customers",
            "SELECT pg_notify('c', email) FROM customers",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
             SELECT string_agg(substr('0123456789', d.k, 1), '' ORDER BY d.p) FROM \
             (SELECT a.i AS p, b.i AS k FROM n a, n b, customers c WHERE c.id = 1 \
             AND substr(c.email, a.i, 1) = substr('0123456789', b.i, 1)) d",
            "SELECT (SELECT count(*) FROM (SELECT generate_series(1, length(c.ssn))) g) FROM customers c",
            "UPDATE customers SET name = name WHERE ssn LIKE '9%'",
            "SELECT ssn AS name FROM customers ORDER BY name",
            "SELECT id, lower(email) FROM customers ORDER BY 2",
            // Parenthesised positions are positions (PostgreSQL strips
            // the parentheses before it looks).
            "SELECT id, lower(email) FROM customers ORDER BY (2)",
            "SELECT lower(email), count(*) FROM customers GROUP BY (1)",
            "SELECT DISTINCT ON (2) id, lower(email) FROM customers",
            "DELETE FROM customers WHERE email = 'x'",
            // Conditions in the select list answer yes/no questions (by a
            // value or by an error).
            "SELECT CASE WHEN ssn LIKE '9%' THEN 1 / 0 ELSE 1 END FROM customers",
            "SELECT CASE ssn WHEN '987-65-4329' THEN 'yes' END FROM customers",
            "SELECT NULLIF(email, 'ann@example.com') IS NULL FROM customers",
            "SELECT COALESCE(ssn, 'none') = 'none' FROM customers",
        ] {
            assert!(verdict(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn mysql_full_text_search_on_a_masked_column_is_a_predicate() {
        let sql = "SELECT name FROM customers WHERE MATCH (ssn) AGAINST ('987*' IN BOOLEAN MODE)";
        let stmt = parse_one(SqlDialect::Mysql, sql).unwrap();
        assert!(check(&stmt, SqlDialect::Mysql, &snapshot(), &[&rule()], false).is_err());
    }

    #[test]
    fn unmasked_reads_pass() {
        for sql in [
            "SELECT id, name FROM customers",
            "SELECT count(*) FROM customers",
            "SELECT o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id",
            "SELECT who FROM v_people",
            "SELECT relname FROM pg_catalog.pg_class",
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
            "SELECT table_name FROM information_schema.tables",
        ] {
            assert!(masked(sql).iter().all(|m| !m), "{sql}");
        }
        // A user function may read any table: its result counts as
        // masked even over unmasked tables.
        assert!(verdict("SELECT my_func(total) FROM orders").is_err());
    }
}
