//! The risk tags of one parsed statement. The statement kind gives the
//! main tags; a walk over the parts that run (queries, expressions, nested
//! data-modifying statements) adds the tags of every function called, of
//! locking clauses and of writes hidden in CTEs. Definitions (a view's
//! query, a column default) are not walked: creating them runs nothing.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, BinaryOperator, ColumnOption, CopySource,
    CopyTarget, DiscardObject, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName,
    ObjectType, Query, Reset, Set, SetExpr, Statement, TableConstraint, TableFactor,
    TransactionAccessMode, TransactionMode, UnaryOperator, Value, Visit, Visitor,
};

use super::builtins::{function_tags, setting_tags, setting_value_tags};
use super::parse::SqlDialect;
use super::tags::{Tag, TagSet};

mod functions;
mod truth;

pub(crate) use functions::name_tags;
use functions::*;
pub use truth::always_true;

/// What a statement does to the session's SQL-level prepared statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// `PREPARE name AS ...`: the tags of what it prepares.
    Define(String, TagSet),
    /// `EXECUTE name`: it runs what was prepared under that name.
    Execute(String),
    /// `DEALLOCATE name` (`None`: all).
    Forget(Option<String>),
}

/// The judgement-relevant facts of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// Its tags.
    pub tags: TagSet,
    /// Its effect on SQL-level prepared statements.
    pub prepared: Option<Prepared>,
}

impl Risk {
    fn tags(tags: TagSet) -> Risk {
        Risk {
            tags,
            prepared: None,
        }
    }
}

thread_local! {
    /// Set when a literal's value decided something during a
    /// classification (see [`classify_watching`]).
    static LITERAL_READ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that a literal's value decided something.
fn literal_read() {
    LITERAL_READ.with(|c| c.set(true));
}

/// A statement's risk, and whether it would be the same with any other
/// literal values: what lets the classification cache share it among
/// texts of one fingerprint (`policy::fingerprint`). Only queries and
/// plain writes can be literal-free; anything else (SET, SHOW, DDL,
/// EXPLAIN, PREPARE, ...) reads its values or names in strings.
pub fn classify_watching(stmt: &Statement, dialect: SqlDialect) -> (Risk, bool) {
    LITERAL_READ.with(|c| c.set(false));
    let risk = classify(stmt, dialect);
    let read = LITERAL_READ.with(|c| c.replace(false));
    let shareable = matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    );
    (risk, shareable && !read)
}

/// Whether an expression holds a literal anywhere.
fn holds_literal(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.visit(&mut LiteralVisitor(&mut found));
    found
}

struct LiteralVisitor<'f>(&'f mut bool);

impl Visitor for LiteralVisitor<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if matches!(e, Expr::Value(_) | Expr::TypedString { .. }) {
            *self.0 = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// `left == right`, noting a literal read when both hold literals (other
/// values could make them equal or not).
fn same_expr(left: &Expr, right: &Expr) -> bool {
    if holds_literal(left) && holds_literal(right) {
        literal_read();
    }
    left == right
}

/// Notes a literal read when `e` holds a literal (what it is compared
/// with decides); always false, to sit in a match guard.
fn note_literal(e: &Expr) -> bool {
    if holds_literal(e) {
        literal_read();
    }
    false
}

/// The tags of a parsed statement.
pub fn classify(stmt: &Statement, dialect: SqlDialect) -> Risk {
    if let Some(tags) = setting_by_row(stmt) {
        return Risk::tags(tags);
    }
    match stmt {
        Statement::Prepare {
            name, statement, ..
        } => {
            let inner = classify(statement, dialect);
            Risk {
                tags: inner.tags,
                prepared: Some(Prepared::Define(ident_norm(name), inner.tags)),
            }
        }
        // `EXECUTE IMMEDIATE '<text>'` runs its string (MariaDB); the
        // MySQL dialect may read it as a statement named `immediate` with
        // the string as a parameter. Either way the text is not judged
        // here: unknown.
        Statement::Execute {
            immediate: true, ..
        } => Risk::tags(of(&[Tag::Unknown])),
        Statement::Execute {
            name: Some(name),
            parameters,
            ..
        } if !parameters.is_empty()
            && name.0.len() == 1
            && name.0[0].as_ident().is_some_and(|i| {
                i.quote_style.is_none() && i.value.eq_ignore_ascii_case("immediate")
            }) =>
        {
            Risk::tags(of(&[Tag::Unknown]))
        }
        Statement::Execute {
            name: Some(name),
            parameters,
            using,
            ..
        } => {
            let mut tags = TagSet::EMPTY;
            for p in parameters {
                tags.extend(walk(dialect, p));
            }
            for u in using {
                tags.extend(walk(dialect, &u.expr));
            }
            Risk {
                tags,
                prepared: Some(Prepared::Execute(object_key(name))),
            }
        }
        // EXPLAIN ANALYZE runs its statement (and an EXECUTE keeps its
        // prepared-statement lookup).
        Statement::Explain {
            analyze,
            statement,
            options,
            ..
        } if *analyze || options.as_deref().is_some_and(analyze_option) => {
            classify(statement, dialect)
        }
        // Plain EXPLAIN plans without running, but still evaluates what
        // the planner folds or an EXECUTE's parameters: their functions.
        Statement::Explain { statement, .. } => {
            let mut tags = of(&[Tag::Read]);
            tags.extend(functions_of(dialect, statement.as_ref()));
            Risk::tags(tags)
        }
        Statement::Deallocate { name, .. } => Risk {
            tags: TagSet::of(Tag::Session),
            prepared: Some(Prepared::Forget(
                (!name.value.eq_ignore_ascii_case("all") || name.quote_style.is_some())
                    .then(|| ident_norm(name)),
            )),
        },
        other => Risk::tags(statement_tags(other, dialect)),
    }
}

/// Prepared-statement names compare as the server does: unquoted ones
/// folded to lower case, quoted ones exactly.
fn ident_norm(i: &sqlparser::ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

fn object_key(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| p.as_ident().map_or_else(|| p.to_string(), ident_norm))
        .collect::<Vec<_>>()
        .join(".")
}

fn of(tags: &[Tag]) -> TagSet {
    tags.iter().copied().collect()
}

fn statement_tags(stmt: &Statement, dialect: SqlDialect) -> TagSet {
    use Statement as S;
    match stmt {
        // `WITH ... INSERT/UPDATE/DELETE` is the write, not a read.
        S::Query(q)
            if matches!(
                q.body.as_ref(),
                SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_)
            ) =>
        {
            walk(dialect, stmt)
        }
        S::Query(_) => of(&[Tag::Read]) | walk(dialect, stmt),
        S::Explain { .. } => classify(stmt, dialect).tags,
        S::ExplainTable { .. } => of(&[Tag::Read]),
        S::Insert(_) | S::Update(_) | S::Delete(_) | S::Merge(_) => walk(dialect, stmt),
        S::Copy {
            source, to, target, ..
        } => {
            let mut tags = if *to {
                of(&[Tag::Read])
            } else {
                of(&[Tag::WriteInsert])
            };
            match source {
                CopySource::Query(q) => tags.extend(walk(dialect, q.as_ref())),
                CopySource::Table { table_name, .. } if is_credential_store(table_name) => {
                    tags.insert(Tag::AdminSecrets)
                }
                CopySource::Table { .. } => {}
            }
            match target {
                CopyTarget::Stdin | CopyTarget::Stdout => {}
                CopyTarget::File { .. } => {
                    tags.insert(if *to { Tag::FileWrite } else { Tag::FileRead })
                }
                CopyTarget::Program { .. } => tags.insert(Tag::FileProgram),
            }
            tags
        }
        S::LoadData { .. } => of(&[Tag::WriteInsert, Tag::FileRead]),
        S::Set(set) => set_tags(dialect, set),
        S::Reset(r) => match &r.reset {
            Reset::ALL => of(&[Tag::AdminConfig]),
            Reset::SessionAuthorization => of(&[Tag::DclRole]),
            Reset::ConfigurationParameter(name) => setting_tags(&name.to_string()),
        },
        S::Discard { object_type } => match object_type {
            DiscardObject::ALL => of(&[Tag::AdminConfig]),
            _ => of(&[Tag::Session]),
        },
        // `SHOW GRANTS [FOR ...]` reads as a variable named GRANTS; it
        // quotes the account's password hash.
        S::ShowVariable { variable }
            if variable
                .first()
                .is_some_and(|v| v.value.eq_ignore_ascii_case("grants")) =>
        {
            of(&[Tag::AdminSecrets])
        }
        S::ShowFunctions { .. }
        | S::ShowVariable { .. }
        | S::ShowStatus { .. }
        | S::ShowVariables { .. }
        | S::ShowCreate { .. }
        | S::ShowColumns { .. }
        | S::ShowCatalogs { .. }
        | S::ShowDatabases { .. }
        | S::ShowProcessList { .. }
        | S::ShowSchemas { .. }
        | S::ShowCharset(_)
        | S::ShowObjects(_)
        | S::ShowTables { .. }
        | S::ShowViews { .. }
        | S::ShowCollation { .. } => of(&[Tag::Read]) | functions_of(dialect, stmt),
        // BEGIN ... END blocks with statements inside: what they run.
        S::StartTransaction { statements, .. } if !statements.is_empty() => {
            let mut tags = of(&[Tag::CodeAnonymous]);
            for inner in statements {
                tags.extend(classify(inner, dialect).tags);
            }
            tags
        }
        S::StartTransaction { modes, .. } => {
            let mut tags = of(&[Tag::Tx]);
            if read_write(modes) {
                tags.insert(Tag::AdminConfig);
            }
            tags
        }
        S::Commit { .. }
        | S::Rollback { .. }
        | S::Savepoint { .. }
        | S::ReleaseSavepoint { .. } => of(&[Tag::Tx]),
        S::Use(_) | S::LISTEN { .. } | S::UNLISTEN { .. } => of(&[Tag::Session]),
        // Sends its payload to every listening session, and PostgreSQL
        // allows it in read-only transactions: a write of its own.
        S::NOTIFY { .. } => of(&[Tag::WriteNotify]),
        S::Close { .. } => of(&[Tag::Session]),
        S::Fetch { .. } => of(&[Tag::Read]),
        S::Declare { stmts } => {
            let mut tags = TagSet::EMPTY;
            for d in stmts {
                match &d.for_query {
                    Some(q) => tags.extend(of(&[Tag::Read]) | walk(dialect, q.as_ref())),
                    None => tags.insert(Tag::Unknown),
                }
            }
            tags
        }
        // ACCESS SHARE is the lock every SELECT takes (pg_dump asks for it).
        S::Lock(l)
            if matches!(
                l.lock_mode,
                Some(sqlparser::ast::LockTableMode::AccessShare)
            ) =>
        {
            of(&[Tag::Read])
        }
        S::Lock(_) | S::LockTables { .. } => of(&[Tag::WriteLock]),
        // Releasing locks is harmless (mysqldump --single-transaction
        // sends it).
        S::UnlockTables => of(&[Tag::Session]),
        S::Truncate(_) => of(&[Tag::DdlTruncate]),
        S::CreateTable(ct) => {
            let mut tags = of(&[Tag::DdlCreate]);
            if let Some(q) = &ct.query {
                tags.extend(walk(dialect, q.as_ref()));
            }
            tags
        }
        S::CreateView(_)
        | S::CreateSchema { .. }
        | S::CreateDatabase { .. }
        | S::CreateSequence { .. }
        | S::CreateType { .. }
        | S::CreateDomain(_)
        | S::CreateTrigger(_)
        | S::CreatePolicy(_)
        | S::CreateCollation(_)
        | S::CreateTextSearch(_)
        | S::CreateVirtualTable { .. } => of(&[Tag::DdlCreate]),
        S::CreateExtension(_) => of(&[Tag::DdlCreate, Tag::CodeFunction]),
        S::CreateFunction(_) | S::CreateProcedure { .. } | S::AlterFunction(_) => {
            of(&[Tag::CodeFunction])
        }
        S::CreateIndex(ci) => {
            let mut tags = of(&[Tag::DdlIndex]);
            // MySQL has no CONCURRENTLY; InnoDB builds indexes online.
            if !ci.concurrently && dialect == SqlDialect::Postgres {
                tags.insert(Tag::DdlBlocking);
            }
            tags
        }
        S::AlterIndex { operation, .. } => match operation {
            sqlparser::ast::AlterIndexOperation::RenameIndex { .. } => of(&[Tag::DdlRename]),
        },
        S::AlterTable(at) => alter_table_tags(&at.operations),
        S::AlterSchema(a) => {
            let mut tags = TagSet::EMPTY;
            for op in &a.operations {
                match op {
                    sqlparser::ast::AlterSchemaOperation::Rename { .. } => {
                        tags.insert(Tag::DdlRename)
                    }
                    sqlparser::ast::AlterSchemaOperation::OwnerTo { .. } => {
                        tags.insert(Tag::DdlAlter);
                        tags.insert(Tag::DclGrant);
                    }
                    _ => tags.insert(Tag::DdlAlter),
                }
            }
            or_alter(tags)
        }
        S::AlterRole {
            operation:
                sqlparser::ast::AlterRoleOperation::Set { .. }
                | sqlparser::ast::AlterRoleOperation::Reset { .. },
            ..
        } => of(&[Tag::AdminConfig]),
        S::AlterView { .. }
        | S::AlterType(_)
        | S::AlterCollation(_)
        | S::AlterPolicy(_)
        | S::Comment { .. } => of(&[Tag::DdlAlter]),
        S::RenameTable(_) => of(&[Tag::DdlRename]),
        S::Drop { object_type, .. } => match object_type {
            ObjectType::Role | ObjectType::User => of(&[Tag::DclRole]),
            _ => of(&[Tag::DdlDrop]),
        },
        S::DropFunction(_)
        | S::DropDomain(_)
        | S::DropProcedure { .. }
        | S::DropPolicy(_)
        | S::DropTrigger(_)
        | S::DropExtension(_) => of(&[Tag::DdlDrop]),
        S::Grant(_) => of(&[Tag::DclGrant]),
        S::Revoke(_) => of(&[Tag::DclRevoke]),
        S::CreateRole(_) | S::CreateUser(_) | S::AlterUser(_) | S::AlterRole { .. } => {
            of(&[Tag::DclRole])
        }
        S::Kill { .. } => of(&[Tag::AdminKill]),
        S::Vacuum(v) if v.full => of(&[Tag::AdminMaintenance, Tag::DdlBlocking]),
        S::Flush {
            read_lock: true, ..
        } => of(&[Tag::AdminMaintenance, Tag::WriteLock]),
        S::Vacuum(_) | S::OptimizeTable { .. } | S::Flush { .. } | S::Analyze(_) => {
            of(&[Tag::AdminMaintenance])
        }
        S::Call(f) => of(&[Tag::CodeCall]) | walk_function_args(dialect, f),
        S::Load { .. } => of(&[Tag::CodeFunction]),
        _ => of(&[Tag::Unknown]),
    }
}

/// `EXPLAIN (ANALYZE [true|on|1], ...)`: the statement runs. Any
/// argument but an explicit false/off/0 counts as on.
fn analyze_option(options: &[sqlparser::ast::UtilityOption]) -> bool {
    options.iter().any(|o| {
        (o.name.value.eq_ignore_ascii_case("analyze")
            || o.name.value.eq_ignore_ascii_case("analyse"))
            && !o.arg.as_ref().is_some_and(|a| {
                let v = a.to_string().to_ascii_lowercase();
                matches!(v.trim_matches('\''), "false" | "off" | "0")
            })
    })
}

fn read_write(modes: &[TransactionMode]) -> bool {
    modes.iter().any(|m| {
        matches!(
            m,
            TransactionMode::AccessMode(TransactionAccessMode::ReadWrite)
        )
    })
}

fn set_tags(dialect: SqlDialect, set: &Set) -> TagSet {
    match set {
        Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => {
            let mut tags = match scope {
                Some(sqlparser::ast::ContextModifier::Global) => of(&[Tag::AdminConfig]),
                _ => variable_tags(variable, Some(&value_text(values))),
            };
            for v in values {
                tags.extend(walk(dialect, v));
            }
            tags
        }
        Set::ParenthesizedAssignments { variables, values } => {
            let mut tags = TagSet::EMPTY;
            for v in variables {
                tags.extend(variable_tags(v, Some(&value_text(values))));
            }
            for v in values {
                tags.extend(walk(dialect, v));
            }
            tags
        }
        Set::MultipleAssignments { assignments } => {
            let mut tags = TagSet::EMPTY;
            for a in assignments {
                tags.extend(match a.scope {
                    Some(sqlparser::ast::ContextModifier::Global) => of(&[Tag::AdminConfig]),
                    _ => variable_tags(&a.name, Some(&a.value.to_string())),
                });
                tags.extend(walk(dialect, &a.value));
            }
            tags
        }
        Set::SetSessionAuthorization(_) | Set::SetRole { .. } => of(&[Tag::DclRole]),
        Set::SetSessionParam(_) => of(&[Tag::Unknown]),
        Set::SetTimeZone { value, .. } => of(&[Tag::Session]) | walk(dialect, value),
        Set::SetNames { charset_name, .. } => {
            setting_value_tags("names", Some(&charset_name.value))
        }
        Set::SetNamesDefault {} => of(&[Tag::Session]),
        Set::SetTransaction { modes, .. } => {
            let mut tags = of(&[Tag::Tx]);
            if read_write(modes) {
                tags.insert(Tag::AdminConfig);
            }
            tags
        }
    }
}

/// A SET target: a user variable (`@x`) is the client's own; anything else
/// is a server setting.
fn variable_tags(name: &ObjectName, value: Option<&str>) -> TagSet {
    let text = name.to_string();
    if text.starts_with('@') && !text.starts_with("@@") {
        return of(&[Tag::Session]);
    }
    setting_value_tags(&text, value)
}

/// The SQL text of a SET's value(s).
fn value_text(values: &[Expr]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn alter_table_tags(ops: &[AlterTableOperation]) -> TagSet {
    use AlterTableOperation as A;
    let mut tags = TagSet::EMPTY;
    for op in ops {
        match op {
            A::RenameTable { .. } | A::RenameColumn { .. } | A::RenameConstraint { .. } => {
                tags.insert(Tag::DdlRename)
            }
            A::DropColumn { .. }
            | A::DropConstraint { .. }
            | A::DropPrimaryKey { .. }
            | A::DropForeignKey { .. }
            | A::DropIndex { .. }
            | A::DropPartitions { .. } => {
                tags.insert(Tag::DdlAlter);
                tags.insert(Tag::DdlDrop);
            }
            A::AddColumn { column_def, .. } => {
                tags.insert(Tag::DdlAlter);
                let rewrites = column_def.options.iter().any(|o| match &o.option {
                    ColumnOption::Default(e) => volatile(e),
                    ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_) => true,
                    ColumnOption::Generated { .. } => true,
                    _ => false,
                }) || serial(&column_def.data_type.to_string());
                if rewrites {
                    tags.insert(Tag::DdlBlocking);
                }
            }
            A::AddConstraint {
                constraint,
                not_valid,
            } => {
                tags.insert(Tag::DdlAlter);
                let checked = matches!(
                    constraint,
                    TableConstraint::Check(_) | TableConstraint::ForeignKey(_)
                );
                // A CHECK or FOREIGN KEY added NOT VALID skips the scan;
                // PRIMARY KEY / UNIQUE build an index under a lock.
                if !(checked && *not_valid) {
                    tags.insert(Tag::DdlBlocking);
                }
            }
            A::AlterColumn { op, .. } => {
                tags.insert(Tag::DdlAlter);
                match op {
                    AlterColumnOperation::SetNotNull
                    | AlterColumnOperation::SetDataType { .. }
                    | AlterColumnOperation::AddGenerated { .. } => tags.insert(Tag::DdlBlocking),
                    _ => {}
                }
            }
            A::ChangeColumn { .. } | A::ModifyColumn { .. } => {
                tags.insert(Tag::DdlAlter);
                tags.insert(Tag::DdlBlocking);
            }
            // A new owner, or row security off: privileges change.
            A::OwnerTo { .. } | A::DisableRowLevelSecurity | A::NoForceRowLevelSecurity => {
                tags.insert(Tag::DdlAlter);
                tags.insert(Tag::DclGrant);
            }
            _ => tags.insert(Tag::DdlAlter),
        }
    }
    or_alter(tags)
}

/// An ALTER whose operations gave no tags is still `ddl.alter`.
fn or_alter(tags: TagSet) -> TagSet {
    if tags.is_empty() {
        TagSet::of(Tag::DdlAlter)
    } else {
        tags
    }
}

fn serial(type_name: &str) -> bool {
    matches!(
        type_name.to_ascii_lowercase().as_str(),
        "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
    )
}

impl std::ops::BitOr for TagSet {
    type Output = TagSet;
    fn bitor(mut self, rhs: TagSet) -> TagSet {
        self.extend(rhs);
        self
    }
}

/// Relations that hold account credentials (password hashes): PostgreSQL's
/// `pg_authid` and `pg_shadow`, MySQL's `mysql.user` and
/// `mysql.global_priv`.
fn is_credential_store(relation: &ObjectName) -> bool {
    let parts: Vec<String> = relation
        .0
        .iter()
        .map(|p| {
            p.to_string()
                .trim_matches(|c| c == '"' || c == '`')
                .to_ascii_lowercase()
        })
        .collect();
    match parts.as_slice() {
        [.., last] if last == "pg_authid" || last == "pg_shadow" => true,
        [.., schema, table] => schema == "mysql" && (table == "user" || table == "global_priv"),
        _ => false,
    }
}

/// pg_dump's `SELECT set_config(name, 'value', false) FROM pg_settings
/// WHERE name = 'setting'`: the name comes from the row the filter picks,
/// so it is judged as setting that one (a computed name is otherwise
/// `admin.config`).
fn setting_by_row(stmt: &Statement) -> Option<TagSet> {
    use sqlparser::ast::{SelectItem, TableFactor};
    let Statement::Query(q) = stmt else {
        return None;
    };
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    let [SelectItem::UnnamedExpr(Expr::Function(f))] = sel.projection.as_slice() else {
        return None;
    };
    let [from] = sel.from.as_slice() else {
        return None;
    };
    let TableFactor::Table { name: table, .. } = &from.relation else {
        return None;
    };
    let table_ok = matches!(
        object_key(table).as_str(),
        "pg_settings" | "pg_catalog.pg_settings"
    ) && from.joins.is_empty();
    if !table_ok {
        // Before any literal is read: only pg_settings rows decide.
        return None;
    }
    let is_name =
        |e: &Expr| matches!(e, Expr::Identifier(i) if i.value.eq_ignore_ascii_case("name"));
    let setting = match &sel.selection {
        Some(Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        }) if is_name(left) => string_literal(right)?,
        _ => return None,
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let args: Vec<&Expr> = list
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    let setter = f.name.to_string().eq_ignore_ascii_case("set_config")
        || f.name
            .to_string()
            .eq_ignore_ascii_case("pg_catalog.set_config");
    if !table_ok || !setter || args.len() != 3 || !is_name(args[0]) {
        return None;
    }
    let value = string_literal(args[1])?;
    let mut tags = of(&[Tag::Read]);
    tags.extend(setting_value_tags(setting, Some(value)));
    Some(tags)
}
