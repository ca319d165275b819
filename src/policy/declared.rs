//! Functions a DBA declares reads (`[functions] read = [...]` in a policy
//! file): an immutable SQL function of their own is `code.function` to
//! the classifier, which cannot see its body. Declared, a statement that
//! calls it is judged as if it called a built-in read instead; every
//! other tag of the statement stays.
//!
//! A declaration changes tags, never masking: a declared function may
//! still read any table, so where masking applies it stays code whose
//! reads are unknown. This module must never drop a tag the statement
//! has for another reason than the declared calls.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, Statement, TableFactor, Visit, VisitMut, Visitor, VisitorMut,
};

use super::parse::SqlDialect;
use super::risk;
use super::tags::{Tag, TagSet};

/// Whether `name` (as written in a statement) is one of `declared`.
fn is_declared(name: &ObjectName, declared: &[String]) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident().map_or(String::new(), |i| {
                if i.quote_style.is_some() {
                    i.value.clone()
                } else {
                    i.value.to_lowercase()
                }
            })
        })
        .collect();
    // An unqualified call is the declared function of that name (the
    // server resolves it by search path); a qualified one must match.
    let full = parts.join(".");
    let last = parts.last().cloned().unwrap_or_default();
    declared
        .iter()
        .any(|d| *d == full || (parts.len() == 1 && d.rsplit('.').next() == Some(last.as_str())))
}

/// The statement's tags with the declared calls judged as reads, and
/// whether it calls any declared function. `None` when nothing changes
/// (no user function called, or one that is not declared).
pub fn tags(stmt: &Statement, dialect: SqlDialect, declared: &[String]) -> Option<TagSet> {
    struct Calls<'d> {
        declared: &'d [String],
        dialect: SqlDialect,
        any: bool,
        undeclared: bool,
    }
    impl Calls<'_> {
        fn call(&mut self, name: &ObjectName) {
            if risk::name_tags(self.dialect, name).contains(Tag::CodeFunction) {
                if is_declared(name, self.declared) {
                    self.any = true;
                } else {
                    self.undeclared = true;
                }
            }
        }
    }
    impl Visitor for Calls<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e {
                self.call(&f.name);
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            match t {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    ..
                }
                | TableFactor::Function { name, .. } => self.call(name),
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut calls = Calls {
        declared,
        dialect,
        any: false,
        undeclared: false,
    };
    let _ = stmt.visit(&mut calls);
    if !calls.any || calls.undeclared {
        return None;
    }
    // The same statement calling a built-in read in each declared call's
    // place: judged by the classifier as it is.
    struct Rename<'d>(&'d [String]);
    impl VisitorMut for Rename<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e {
                if is_declared(&f.name, self.0) {
                    f.name = ObjectName::from(vec![sqlparser::ast::Ident::new("coalesce")]);
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            match t {
                TableFactor::Table {
                    name,
                    args: Some(_),
                    ..
                }
                | TableFactor::Function { name, .. }
                    if is_declared(name, self.0) =>
                {
                    *name = ObjectName::from(vec![sqlparser::ast::Ident::new("generate_series")]);
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut renamed = stmt.clone();
    let _ = VisitMut::visit(&mut renamed, &mut Rename(declared));
    Some(risk::classify(&renamed, dialect).tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(sql: &str, declared: &[&str]) -> Option<String> {
        let stmt = crate::policy::parse::parse(SqlDialect::Postgres, sql.as_bytes())
            .unwrap()
            .remove(0);
        let declared: Vec<String> = declared.iter().map(|s| s.to_string()).collect();
        tags(&stmt, SqlDialect::Postgres, &declared).map(|t| t.to_string())
    }

    #[test]
    fn declared_calls_are_reads_and_nothing_else_changes() {
        assert_eq!(
            judged("SELECT slugify(name) FROM t", &["slugify"]).as_deref(),
            Some("read")
        );
        assert_eq!(
            judged("SELECT public.slugify(name) FROM t", &["public.slugify"]).as_deref(),
            Some("read")
        );
        assert_eq!(
            judged("SELECT other.slugify(name) FROM t", &["public.slugify"]),
            None
        );
        assert_eq!(
            judged("SELECT slugify(name) FROM t", &["public.slugify"]).as_deref(),
            Some("read")
        );
        assert_eq!(
            judged("SELECT slugify(name), leak(x) FROM t", &["slugify"]),
            None
        );
        assert_eq!(judged("SELECT lower(name) FROM t", &["slugify"]), None);
        assert_eq!(
            judged("DELETE FROM t WHERE slugify(name) = 'x'", &["slugify"]).as_deref(),
            Some("write.delete")
        );
        assert_eq!(
            judged("SELECT * FROM expand_tags(3)", &["expand_tags"]).as_deref(),
            Some("read")
        );
    }
}
