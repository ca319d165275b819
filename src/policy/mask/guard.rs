//! What masking makes of a statement before it runs: the plan of its
//! output columns (masked on the wire as rows pass), or a refusal — an
//! output whose origin cannot be known while it touches masked columns
//! (unless the rule redacts such columns), a filter on a masked column
//! (unless the rule allows predicates), masked values leaving by a path
//! that is not a result set the relay rewrites (COPY ... TO, a cursor
//! declared or a statement prepared in SQL), or a relation the catalog
//! lacks. Identities a rule exempts are never asked.

use std::ops::ControlFlow;

use sqlparser::ast::{CopySource, ObjectName, SelectItem, Statement, Visit, Visitor};

use super::lineage::{
    norm, object_parts, output_lineage, reads_tables, relation_columns, Catalog, ColumnRef,
    OutputColumn,
};
use super::metadata::{self, NamedTexts};
use super::rules::{plan, ColumnPlan, MaskRule, OnUnknown, Plan};
use crate::policy::parse::SqlDialect;

/// Why a statement is refused by masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskRefusal {
    /// One line.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// The catalog snapshot lacks something the statement names: it
    /// should be read again.
    pub stale: bool,
}

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
    let meta_names = metadata::names(rules);
    let named = !meta_names.is_empty() && names_any(stmt, &meta_names);
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

/// A condition on a masked column (or on a text the built-in rules mask)
/// where the rule denies predicates.
fn refuse_predicates(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
    rules: &[&MaskRule],
) -> Result<(), MaskRefusal> {
    // A DBA's rules: every condition and the order of rows. The built-in
    // rules: conditions (a LIKE on a definition reads its literals),
    // not the order (psql's \df sorts by argument lists): sorting
    // texts by their whole tells nothing of a literal inside them.
    // Nor whether a definition exists (`indpred IS NOT NULL`, as
    // SQLAlchemy's reflection asks): that is not what is in it.
    let (builtin, user): (Vec<&MaskRule>, Vec<&MaskRule>) =
        rules.iter().copied().partition(|r| r.builtin());
    let hit = predicate_on_masked(stmt, dialect, catalog, &user, true).or_else(|| {
        if builtin.is_empty() {
            return None;
        }
        let mut presence_only = stmt.clone();
        let _ = sqlparser::ast::visit_expressions_mut(&mut presence_only, |e| {
            if let sqlparser::ast::Expr::IsNull(x) | sqlparser::ast::Expr::IsNotNull(x) = e {
                if matches!(
                    x.as_ref(),
                    sqlparser::ast::Expr::Identifier(_)
                        | sqlparser::ast::Expr::CompoundIdentifier(_)
                ) {
                    *e = sqlparser::ast::Expr::Value(sqlparser::ast::Value::Boolean(true).into());
                }
            }
            ControlFlow::<()>::Continue(())
        });
        predicate_on_masked(&presence_only, dialect, catalog, &builtin, false)
    });
    match hit {
        Some((c, rule)) => Err(MaskRefusal {
            message: format!(
                "the statement filters, joins, groups or sorts on {c}, masked by rule \"{rule}\""
            ),
            hint: "a condition on a masked column reveals its values; the rule sets predicates = \"deny\"".to_owned(),
            stale: false,
        }),
        None => Ok(()),
    }
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

/// Schemas of system relations: they hold no table data (except the
/// statistics relations, refused on their own).
const SYSTEM_SCHEMAS: &[&str] = &[
    "pg_catalog",
    "information_schema",
    "mysql",
    "performance_schema",
    "sys",
];

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
fn stores_masked(
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
struct Relations {
    names: Vec<ObjectName>,
    ctes: Vec<String>,
    /// The next name the visitor reports is a table function's
    /// (`generate_series(1, 3)` in FROM): a function, not a relation.
    function_next: bool,
    /// The statement calls a function that reads tables by name.
    table_reader: bool,
    /// Functions it calls (last name part; schema-qualified only when
    /// `pg_catalog`).
    functions: Vec<String>,
    /// Set-returning functions in its FROM lists.
    table_functions: Vec<String>,
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
    fn of(stmt: &Statement) -> Self {
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
    fn ambiguous(&self, catalog: &dyn Catalog) -> Option<(String, Vec<String>)> {
        self.names
            .iter()
            .find_map(|name| match object_parts(name).as_slice() {
                [t] if !self.ctes.contains(t) => catalog.ambiguous(t).map(|c| (t.clone(), c)),
                _ => None,
            })
    }

    /// A name that is neither a CTE of the statement, nor in the
    /// catalog, nor a system relation.
    fn unknown(&self, catalog: &dyn Catalog) -> Option<String> {
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
    fn statistics(&self) -> Option<String> {
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
    fn columns(&self, dialect: SqlDialect, catalog: &dyn Catalog) -> Vec<ColumnRef> {
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

/// The constraint of a join (ON, USING, NATURAL), if it has one.
fn join_constraint(op: &sqlparser::ast::JoinOperator) -> Option<&sqlparser::ast::JoinConstraint> {
    use sqlparser::ast::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c) => Some(c),
        _ => None,
    }
}

/// Set-returning functions: how many rows they make depends on their
/// arguments, so an argument is as revealing as a filter.
const SET_RETURNING: &[&str] = &[
    "generate_series",
    "generate_subscripts",
    "unnest",
    "regexp_matches",
    "regexp_split_to_table",
    "string_to_table",
    "json_array_elements",
    "json_array_elements_text",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "json_each",
    "json_each_text",
    "jsonb_each",
    "jsonb_each_text",
    "json_object_keys",
    "jsonb_object_keys",
    "json_table",
];

/// The expressions of one SELECT that decide which rows exist or in which
/// order, rather than what a row shows: WHERE, JOIN ... ON / USING, GROUP
/// BY, HAVING, window PARTITION BY / ORDER BY, and the arguments of
/// set-returning functions.
/// What a SELECT deduplicates on: every output for DISTINCT (how many
/// rows remain answers whether values are equal), the expressions of
/// DISTINCT ON.
fn distinct_of(s: &sqlparser::ast::Select) -> Vec<sqlparser::ast::Expr> {
    match &s.distinct {
        Some(sqlparser::ast::Distinct::Distinct) => projection_exprs(s),
        Some(sqlparser::ast::Distinct::On(on)) => on.clone(),
        _ => Vec::new(),
    }
}

/// A SELECT's output expressions.
fn projection_exprs(s: &sqlparser::ast::Select) -> Vec<sqlparser::ast::Expr> {
    s.projection
        .iter()
        .filter_map(|p| match p {
            SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => {
                Some(x.clone())
            }
            _ => None,
        })
        .collect()
}

fn filters_of(s: &sqlparser::ast::Select) -> Vec<sqlparser::ast::Expr> {
    use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, JoinConstraint};
    let mut exprs: Vec<Expr> = Vec::new();
    exprs.extend(s.selection.clone());
    exprs.extend(s.having.clone());
    for twj in &s.from {
        for j in &twj.joins {
            match join_constraint(&j.join_operator) {
                Some(JoinConstraint::On(on)) => exprs.push(on.clone()),
                Some(JoinConstraint::Using(cols)) => exprs.extend(cols.iter().filter_map(|c| {
                    object_parts(c)
                        .last()
                        .map(|n| Expr::Identifier(sqlparser::ast::Ident::new(n)))
                })),
                _ => {}
            }
        }
    }
    // What the outputs are by position or alias (`GROUP BY 1`, `GROUP BY
    // b`): grouping by an output groups by its expression.
    let output = |e: &Expr| -> Option<Expr> {
        match e {
            Expr::Value(v) => {
                let n = v.to_string().parse::<usize>().ok()?;
                match s.projection.get(n.checked_sub(1)?)? {
                    SelectItem::UnnamedExpr(x) | SelectItem::ExprWithAlias { expr: x, .. } => {
                        Some(x.clone())
                    }
                    _ => None,
                }
            }
            Expr::Identifier(id) => s.projection.iter().find_map(|p| match p {
                SelectItem::ExprWithAlias { expr, alias } if norm(alias) == norm(id) => {
                    Some(expr.clone())
                }
                _ => None,
            }),
            _ => None,
        }
    };
    if let sqlparser::ast::GroupByExpr::Expressions(g, _) = &s.group_by {
        exprs.extend(g.iter().cloned());
        exprs.extend(g.iter().filter_map(output));
    }

    // The arguments of set-returning functions in FROM decide how many
    // rows exist (`generate_series(1, ascii(ssn))`).
    for twj in &s.from {
        for factor in std::iter::once(&twj.relation).chain(twj.joins.iter().map(|j| &j.relation)) {
            match factor {
                sqlparser::ast::TableFactor::Table {
                    args: Some(args), ..
                } => {
                    for a in &args.args {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x))
                        | FunctionArg::Named {
                            arg: FunctionArgExpr::Expr(x),
                            ..
                        } = a
                        {
                            exprs.push(x.clone());
                        }
                    }
                }
                sqlparser::ast::TableFactor::Function { args, .. } => {
                    for a in args {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x))
                        | FunctionArg::Named {
                            arg: FunctionArgExpr::Expr(x),
                            ..
                        } = a
                        {
                            exprs.push(x.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // `WINDOW w AS (PARTITION BY ... ORDER BY ...)`.
    for w in &s.named_window {
        if let sqlparser::ast::NamedWindowExpr::WindowSpec(spec) = &w.1 {
            exprs.extend(spec.partition_by.iter().cloned());
            exprs.extend(spec.order_by.iter().map(|o| o.expr.clone()));
        }
    }
    // Windows and set-returning functions anywhere in the SELECT's own
    // expressions (not inside nested queries, which are their own SELECTs).
    struct Inner<'v>(&'v mut Vec<Expr>);
    impl Visitor for Inner<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            // Conditions in the select list decide which value (or which
            // error) a row gets: a yes/no question about the value.
            if let Expr::Case {
                operand,
                conditions,
                ..
            } = e
            {
                self.0.extend(operand.iter().map(|o| (**o).clone()));
                self.0
                    .extend(conditions.iter().map(|c| c.condition.clone()));
            }
            if let Expr::Function(f) = e {
                let name = object_parts(&f.name).pop().unwrap_or_default();
                let condition_args = match name.as_str() {
                    // NULLIF compares its arguments; COALESCE and IFNULL
                    // test theirs for NULL; IF's first is its condition.
                    "nullif" | "coalesce" | "ifnull" | "nvl" => usize::MAX,
                    "if" | "iif" => 1,
                    _ => 0,
                };
                if let FunctionArguments::List(l) = &f.args {
                    for a in l.args.iter().take(condition_args) {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                            self.0.push(x.clone());
                        }
                    }
                }
                if let Some(sqlparser::ast::WindowType::WindowSpec(w)) = &f.over {
                    self.0.extend(w.partition_by.iter().cloned());
                    self.0.extend(w.order_by.iter().map(|o| o.expr.clone()));
                }
                let srf = object_parts(&f.name)
                    .last()
                    .is_some_and(|n| SET_RETURNING.contains(&n.as_str()));
                if srf {
                    if let FunctionArguments::List(l) = &f.args {
                        for a in &l.args {
                            if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x))
                            | FunctionArg::Named {
                                arg: FunctionArgExpr::Expr(x),
                                ..
                            } = a
                            {
                                self.0.push(x.clone());
                            }
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut inner = Vec::new();
    for item in &s.projection {
        let _ = item.visit(&mut Inner(&mut inner));
    }
    for twj in &s.from {
        let _ = twj.relation.visit(&mut Inner(&mut inner));
    }
    exprs.extend(inner);
    exprs
}

/// A masked column (with a rule that denies predicates) that decides which
/// rows exist or their order, at any depth of the statement: every
/// SELECT's filters (see [`filters_of`]) and every query's ORDER BY. Each
/// SELECT's filters are followed by lineage through its own FROM (with the
/// statement's CTEs); a name of a masked column in a filter counts too, so
/// that correlated references to outer tables are caught.
fn predicate_on_masked(
    stmt: &Statement,
    dialect: SqlDialect,
    catalog: &dyn Catalog,
    rules: &[&MaskRule],
    order_by: bool,
) -> Option<(ColumnRef, String)> {
    use sqlparser::ast::{Expr, Query, SetExpr};
    let strict: Vec<&&MaskRule> = rules.iter().filter(|r| !r.predicates_allowed).collect();
    if strict.is_empty() {
        return None;
    }
    // Every query of the statement, and the CTEs in scope anywhere.
    struct Queries(Vec<Query>, Vec<sqlparser::ast::Cte>);
    impl Visitor for Queries {
        type Break = ();
        fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
            if let Some(w) = &q.with {
                self.1.extend(w.cte_tables.iter().cloned());
            }
            self.0.push(q.clone());
            ControlFlow::Continue(())
        }
    }
    let mut queries = Queries(Vec::new(), Vec::new());
    let _ = stmt.visit(&mut queries);
    // The masked columns the statement touches, by name.
    let touched = Relations::of(stmt).columns(dialect, catalog);
    let strict_cols: Vec<(ColumnRef, String)> = touched
        .into_iter()
        .filter_map(|c| {
            let r = strict.iter().find(|r| r.covers(&c))?;
            Some((c, r.name.clone()))
        })
        .collect();
    if strict_cols.is_empty() {
        return None;
    }
    let by_name = |exprs: &[Expr]| -> Option<(ColumnRef, String)> {
        struct Names(Vec<String>);
        impl Visitor for Names {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                match e {
                    Expr::Identifier(i) => self.0.push(norm(i)),
                    Expr::CompoundIdentifier(ids) => self.0.extend(ids.last().map(norm)),
                    Expr::MatchAgainst { columns, .. } => self
                        .0
                        .extend(columns.iter().filter_map(|c| object_parts(c).pop())),
                    _ => {}
                }
                ControlFlow::Continue(())
            }
        }
        let mut names = Names(Vec::new());
        for e in exprs {
            let _ = e.visit(&mut names);
        }
        strict_cols
            .iter()
            .find(|(c, _)| names.0.iter().any(|n| n.eq_ignore_ascii_case(&c.column)))
            .cloned()
    };
    // DELETE and UPDATE filters: the rows affected are counted in the
    // reply, so a filter on a masked column is an inference channel too.
    let dml_filter = match stmt {
        Statement::Update(u) => u.selection.clone(),
        Statement::Delete(d) => d.selection.clone(),
        _ => None,
    };
    if let Some(hit) = dml_filter.and_then(|f| by_name(&[f])) {
        return Some(hit);
    }
    let with = (!queries.1.is_empty()).then(|| sqlparser::ast::With {
        with_token: sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
        recursive: true,
        cte_tables: queries.1.clone(),
    });
    for q in &queries.0 {
        let mut selects: Vec<&sqlparser::ast::Select> = Vec::new();
        // INTERSECT, EXCEPT and UNION (not ALL) compare their rows'
        // values: which survive answers whether they are equal.
        let mut compared = false;
        let mut stack = vec![q.body.as_ref()];
        while let Some(b) = stack.pop() {
            match b {
                SetExpr::Select(s) => selects.push(s),
                SetExpr::SetOperation {
                    left,
                    right,
                    set_quantifier,
                    ..
                } => {
                    compared |= !matches!(
                        set_quantifier,
                        sqlparser::ast::SetQuantifier::All
                            | sqlparser::ast::SetQuantifier::AllByName
                    );
                    stack.push(left);
                    stack.push(right);
                }
                _ => {}
            }
        }
        // LIMIT and OFFSET decide how many rows come back.
        let mut bounds: Vec<Expr> = Vec::new();
        match &q.limit_clause {
            Some(sqlparser::ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                bounds.extend(limit.clone());
                bounds.extend(offset.as_ref().map(|o| o.value.clone()));
            }
            Some(sqlparser::ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                bounds.push(offset.clone());
                bounds.push(limit.clone());
            }
            None => {}
        }
        let mut order: Vec<Expr> = Vec::new();
        if let Some(ob) = q.order_by.as_ref() {
            if let sqlparser::ast::OrderByKind::Expressions(list) = &ob.kind {
                // ORDER BY an output name or position sorts by that
                // output's expression.
                let first = selects.last().copied();
                for e in list {
                    match (first, &e.expr) {
                        (Some(s), Expr::Identifier(id)) => {
                            let aliased = s.projection.iter().find_map(|p| match p {
                                SelectItem::ExprWithAlias { expr, alias }
                                    if norm(alias) == norm(id) =>
                                {
                                    Some(expr.clone())
                                }
                                _ => None,
                            });
                            order.push(aliased.unwrap_or_else(|| e.expr.clone()));
                        }
                        (Some(s), Expr::Value(v)) => {
                            let n = v.to_string().parse::<usize>().ok();
                            match n.and_then(|n| s.projection.get(n.wrapping_sub(1))) {
                                Some(SelectItem::UnnamedExpr(x))
                                | Some(SelectItem::ExprWithAlias { expr: x, .. }) => {
                                    order.push(x.clone())
                                }
                                // A position under `*`: not followed, so
                                // assume the worst.
                                Some(_) if order_by => return strict_cols.first().cloned(),
                                Some(_) => {}
                                None => {}
                            }
                        }
                        _ => order.push(e.expr.clone()),
                    }
                }
            }
        }
        // Deduplicating or comparing texts by their whole tells nothing
        // of a literal in them; doing it by something computed on them
        // can (the built-in rules' case: `order_by` false).
        let whole = |e: &Expr| {
            matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                || matches!(e, Expr::Function(f)
                    if object_parts(&f.name).last().is_some_and(|n| metadata::text_function(dialect, n)))
        };
        if !order_by {
            // psql's own catalog queries sort by computed definitions
            // (`ORDER BY pg_get_expr(...) = 'DEFAULT'`): ordering stays
            // an inference channel about definitions' literals
            // (policies/README.md says so).
            order.clear();
        }
        for (i, s) in selects.iter().enumerate() {
            let mut exprs = filters_of(s);
            let mut compares = distinct_of(s);
            if compared {
                compares.extend(projection_exprs(s));
            }
            if !order_by {
                compares.retain(|e| !whole(e));
            }
            exprs.extend(compares);
            if i == 0 {
                exprs.extend(bounds.iter().cloned());
                // ORDER BY may name output aliases: follow it through the
                // first SELECT's own outputs as well as by name.
                exprs.extend(order.iter().cloned());
            }
            if exprs.is_empty() {
                continue;
            }
            if let Some(hit) = by_name(&exprs) {
                return Some(hit);
            }
            let mut probe = q.clone();
            probe.with = with.clone();
            probe.order_by = None;
            let mut sel = (*s).clone();
            sel.projection = exprs.into_iter().map(SelectItem::UnnamedExpr).collect();
            sel.selection = None;
            sel.having = None;
            probe.body = Box::new(SetExpr::Select(Box::new(sel)));
            let Ok(outs) = output_lineage(&Statement::Query(Box::new(probe)), dialect, catalog)
            else {
                continue;
            };
            for o in outs {
                for c in &o.lineage.sources {
                    if let Some(r) = strict.iter().find(|r| r.covers(c)) {
                        return Some((c.clone(), r.name.clone()));
                    }
                }
            }
        }
    }
    None
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
