//! The tags of what a statement runs: every function it calls (through
//! the built-in table, `set_config`'s setting, a qualified name), its
//! operators, and whether an expression is volatile. It must never let
//! a function go untagged: an unknown one is `code.function`.

use super::*;

/// Whether a column default is volatile (PostgreSQL then rewrites the
/// table on ADD COLUMN): any function that is not known to be stable.
pub(super) fn volatile(e: &Expr) -> bool {
    let mut found = false;
    let _ = e.visit(&mut FnVisitor(|f: &sqlparser::ast::Function| {
        let name = f.name.to_string().to_ascii_lowercase();
        let last = name.rsplit('.').next().unwrap_or(&name);
        found |= !crate::policy::builtins::pg_non_volatile(last);
    }));
    found
}

pub(super) struct FnVisitor<F>(F);

impl<F: FnMut(&sqlparser::ast::Function)> Visitor for FnVisitor<F> {
    type Break = ();
    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            (self.0)(f);
        }
        ControlFlow::Continue(())
    }
}

/// Tags of what runs inside a node: functions called, locking clauses,
/// nested data-modifying statements.
pub(super) fn walk<V: Visit>(dialect: SqlDialect, node: &V) -> TagSet {
    let mut w = Walker {
        tags: TagSet::EMPTY,
        dialect,
        functions_only: false,
    };
    let _ = node.visit(&mut w);
    w.tags
}

pub(super) fn walk_function_args(dialect: SqlDialect, f: &sqlparser::ast::Function) -> TagSet {
    let mut w = Walker {
        tags: TagSet::EMPTY,
        dialect,
        functions_only: false,
    };
    let _ = f.args.visit(&mut w);
    w.tags
}

pub(super) struct Walker {
    tags: TagSet,
    dialect: SqlDialect,
    /// Only the functions called (for plain EXPLAIN).
    functions_only: bool,
}

/// The tags of the functions a node calls, nothing else.
pub(super) fn functions_of<V: Visit>(dialect: SqlDialect, node: &V) -> TagSet {
    let mut w = Walker {
        tags: TagSet::EMPTY,
        dialect,
        functions_only: true,
    };
    let _ = node.visit(&mut w);
    w.tags
}

impl Visitor for Walker {
    type Break = ();

    fn pre_visit_statement(&mut self, stmt: &Statement) -> ControlFlow<()> {
        use Statement as S;
        if self.functions_only {
            return ControlFlow::Continue(());
        }
        match stmt {
            S::Insert(ins) => {
                self.tags.insert(Tag::WriteInsert);
                if ins.on.is_some() || ins.replace_into {
                    self.tags.insert(Tag::WriteUpsert);
                }
            }
            S::Update(u) => {
                self.tags.insert(Tag::WriteUpdate);
                // pg_settings is set_config by another name.
                if u.table
                    .relation
                    .to_string()
                    .to_ascii_lowercase()
                    .ends_with("pg_settings")
                {
                    self.tags.insert(Tag::AdminConfig);
                }
                if u.selection.as_ref().is_none_or(always_true) {
                    self.tags.insert(Tag::WriteUnbounded);
                }
            }
            S::Delete(d) => {
                self.tags.insert(Tag::WriteDelete);
                if d.selection.as_ref().is_none_or(always_true) {
                    self.tags.insert(Tag::WriteUnbounded);
                }
            }
            S::Merge(_) => self.tags.insert(Tag::WriteMerge),
            // A statement nested in a query that is not one of the above
            // (the parser's future additions): not a read.
            S::Query(_) => {}
            _ => self.tags.insert(Tag::Unknown),
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
        if is_credential_store(relation) {
            self.tags.insert(Tag::AdminSecrets);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        // `TABLE name`: a relation the visitor does not report, as the
        // query or a branch of its set operations (`... UNION TABLE
        // pg_authid`; a nested query is visited on its own).
        fn tables<'q>(body: &'q SetExpr, found: &mut Vec<&'q sqlparser::ast::Table>) {
            match body {
                SetExpr::Table(t) => found.push(t),
                SetExpr::SetOperation { left, right, .. } => {
                    tables(left, found);
                    tables(right, found);
                }
                _ => {}
            }
        }
        let mut found = Vec::new();
        tables(&q.body, &mut found);
        for t in found {
            let name: Vec<&str> = [t.schema_name.as_deref(), t.table_name.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            if is_credential_store(&ObjectName::from(
                name.iter()
                    .map(|p| sqlparser::ast::Ident::new(*p))
                    .collect::<Vec<_>>(),
            )) {
                self.tags.insert(Tag::AdminSecrets);
            }
        }
        if !q.locks.is_empty() && !self.functions_only {
            self.tags.insert(Tag::WriteLock);
        }
        ControlFlow::Continue(())
    }

    /// `SELECT ... INTO` on any branch: a new table (PostgreSQL), or
    /// user variables (MySQL `INTO @v`).
    fn pre_visit_select(&mut self, s: &sqlparser::ast::Select) -> ControlFlow<()> {
        if let (Some(into), false) = (&s.into, self.functions_only) {
            if !into.targets.is_empty()
                && into.targets.iter().all(|t| t.to_string().starts_with('@'))
            {
                self.tags.insert(Tag::Session);
            } else {
                self.tags.insert(Tag::DdlCreate);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        match tf {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => self.tags.extend(name_tags(self.dialect, name)),
            TableFactor::Function { name, .. } => self.tags.extend(name_tags(self.dialect, name)),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::Function(f) => {
                let tags = name_tags(self.dialect, &f.name);
                // `set_config` or `pg_catalog.set_config`, unquoted in
                // any case (the server folds it) or quoted in lower case.
                let is = |part: &sqlparser::ast::ObjectNamePart, word: &str| {
                    part.as_ident().is_some_and(|i| match i.quote_style {
                        None => i.value.eq_ignore_ascii_case(word),
                        Some(_) => i.value == word,
                    })
                };
                let setter = match f.name.0.as_slice() {
                    [name] => is(name, "set_config"),
                    [schema, name] => is(schema, "pg_catalog") && is(name, "set_config"),
                    _ => false,
                };
                if setter && tags.contains(Tag::CodeFunction) {
                    self.tags.extend(set_config_tags(self.dialect, &f.args));
                } else {
                    self.tags.extend(tags);
                }
            }
            Expr::BinaryOp { op, .. } if !builtin_operator(op) => {
                self.tags.insert(Tag::CodeFunction)
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Whether an operator is PostgreSQL's own: `OPERATOR(pg_catalog.~)`
/// (psql's catalog queries use it) and the built-in symbols sqlparser has
/// no variant for. A user-defined operator runs a user-defined function.
pub(super) fn builtin_operator(op: &BinaryOperator) -> bool {
    const SYMBOLS: &[&str] = &[
        "~~", "!~~", "~~*", "!~~*", "<<", ">>", "&<", "&>", "-|-", "<->", "<#>", "<=>", "##",
        "@-@", "?#", "?-", "?|", "~=", "<<=", ">>=", "&&", "@@@", "<^", ">^", "|>>", "<<|", "&<|",
        "|&>", "?-|", "?||",
    ];
    match op {
        BinaryOperator::PGCustomBinaryOperator(parts) => match parts.as_slice() {
            [schema, symbol] => {
                schema.eq_ignore_ascii_case("pg_catalog")
                    && symbol.chars().all(|c| "+-*/<>=~!@#%^&|`?".contains(c))
            }
            _ => false,
        },
        BinaryOperator::Custom(symbol) => SYMBOLS.contains(&symbol.as_str()),
        _ => true,
    }
}

/// The tags of calling a function by this name (`code.function` for a
/// user's).
pub(crate) fn name_tags(dialect: SqlDialect, name: &ObjectName) -> TagSet {
    // A quoted name that is not all lower case is not a built-in: the
    // server matches it exactly, so `"LOWER"(x)` calls a user function.
    if name.0.iter().any(|p| {
        p.as_ident().is_some_and(|i| {
            i.quote_style.is_some()
                && (i.value != i.value.to_lowercase()
                    || crate::policy::builtins::PG_SYNTAX.contains(&i.value.as_str()))
        })
    }) {
        return of(&[Tag::CodeFunction]);
    }
    let parts: Vec<&str> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| i.value.as_str()).unwrap_or(""))
        .collect();
    match parts.as_slice() {
        [f] => function_tags(dialect, None, f),
        [schema, f] => function_tags(dialect, Some(schema), f),
        _ => of(&[Tag::CodeFunction]),
    }
}

/// `set_config('name', value, is_local)`: judged like `SET name`, when the
/// name is a literal; a computed name could be anything.
pub(super) fn set_config_tags(dialect: SqlDialect, args: &FunctionArguments) -> TagSet {
    let FunctionArguments::List(list) = args else {
        return of(&[Tag::AdminConfig]);
    };
    let mut tags = TagSet::EMPTY;
    let mut exprs = Vec::new();
    for arg in &list.args {
        match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => exprs.push(e),
            _ => return of(&[Tag::AdminConfig]),
        }
    }
    match (exprs.first().and_then(|e| string_literal(e)), exprs.get(1)) {
        // The value must be a literal too where it matters (encodings,
        // string syntax, search_path); a computed one is judged unknown-valued.
        (Some(name), Some(value)) => {
            let literal = string_literal(value).map(str::to_owned);
            let judged = setting_value_tags(name, Some(literal.as_deref().unwrap_or("?computed?")));
            tags.extend(judged);
            if literal.is_none() && judged.contains(Tag::Session) {
                // A computed value of a setting harmless only at some values.
                let strict = setting_value_tags(name, Some("sjis"));
                tags.extend(strict);
            }
        }
        (Some(name), None) => tags.extend(setting_tags(name)),
        _ => tags.insert(Tag::AdminConfig),
    }
    for e in exprs.iter().skip(1) {
        tags.extend(walk(dialect, *e));
    }
    if tags.is_empty() {
        tags.insert(Tag::AdminConfig);
    }
    tags
}

/// A string literal's value (noted as read: it decides something).
pub(super) fn string_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                literal_read();
                Some(s)
            }
            _ => None,
        },
        Expr::Nested(inner) => string_literal(inner),
        Expr::Cast { expr, .. } => string_literal(expr),
        _ => None,
    }
}
