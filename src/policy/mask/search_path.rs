//! The search paths a PostgreSQL session sets, which masking follows to
//! resolve unqualified names (`catalog::SessionCatalog`). Only literal
//! values are read: a computed path is `admin.config` to the policy.

/// The schemas of a search path as `SET search_path` or `set_config`
/// write it (`a, "B", '$user'`): unquoted names folded, quoted kept.
pub fn parse(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(
            |s| match s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => s.to_lowercase(),
            },
        )
        .collect()
}

/// The search path a statement sets: `SET [SESSION|LOCAL] search_path
/// ...` or `set_config('search_path', '<path>', ...)` with literal
/// arguments.
pub fn set_by(stmt: &sqlparser::ast::Statement) -> Option<Vec<String>> {
    use sqlparser::ast::{
        Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Set, Statement, Value, Visit,
        Visitor,
    };
    use std::ops::ControlFlow;
    let literal = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    if let Statement::Set(Set::SingleAssignment {
        variable, values, ..
    }) = stmt
    {
        if !variable.to_string().eq_ignore_ascii_case("search_path") {
            return None;
        }
        let mut path = Vec::new();
        for v in values {
            match v {
                Expr::Identifier(i) => path.push(super::lineage::norm(i)),
                other => path.extend(parse(&literal(other).unwrap_or_else(|| other.to_string()))),
            }
        }
        return Some(path);
    }
    struct SetConfig(Option<Vec<String>>);
    impl Visitor for SetConfig {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            let Expr::Function(f) = e else {
                return ControlFlow::Continue(());
            };
            let name = f.name.to_string().to_ascii_lowercase();
            if name != "set_config" && name != "pg_catalog.set_config" {
                return ControlFlow::Continue(());
            }
            let FunctionArguments::List(l) = &f.args else {
                return ControlFlow::Continue(());
            };
            let arg = |i: usize| match l.args.get(i) {
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) => {
                    match &v.value {
                        Value::SingleQuotedString(s) => Some(s.clone()),
                        _ => None,
                    }
                }
                _ => None,
            };
            if arg(0).is_some_and(|n| n.eq_ignore_ascii_case("search_path")) {
                if let Some(v) = arg(1) {
                    self.0 = Some(parse(&v));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut found = SetConfig(None);
    let _ = stmt.visit(&mut found);
    found.0
}
