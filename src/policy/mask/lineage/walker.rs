//! The walk over one expression's parts that collects its lineage: the
//! columns it reads (through the analyser's scope), the sub-selects it
//! holds (analysed with their own scope), and why an origin is unknown
//! (an unknown function, a whole-row reference to nothing in scope).
//!
//! This module must never let an expression read a column without
//! adding that column, or an unknown origin, to its lineage.

use super::*;

/// Collects the lineage of an expression. Sub-selects are analysed with
/// their own scope; identifiers inside them are skipped here.
pub(super) struct ExprWalker<'a, 'b> {
    pub(super) a: &'a Analyzer<'b>,
    pub(super) scope: &'a Scope,
    pub(super) lineage: Lineage,
    pub(super) nested: usize,
    /// Inside a metadata function's arguments (already followed).
    pub(super) skip: usize,
}

impl ExprWalker<'_, '_> {
    /// PostgreSQL's system columns (`tableoid`, `ctid`, `xmin` ...), which
    /// no table can have a column of the same name as.
    fn system_column(&self, name: &str) -> bool {
        self.a.dialect == SqlDialect::Postgres
            && matches!(
                name,
                "tableoid" | "ctid" | "xmin" | "xmax" | "cmin" | "cmax"
            )
    }

    /// `c.*` inside an expression: every column of `c`.
    fn whole_relation(&mut self, name: &ObjectName) {
        let parts = object_parts(name);
        match parts.last().and_then(|r| self.scope.rel(r)) {
            Some(r) => {
                for (_, l) in r.columns.clone() {
                    self.lineage.extend(&l);
                }
            }
            None => self
                .lineage
                .unknown
                .push(format!("{name}.* names no relation in scope")),
        }
    }
}

impl Visitor for ExprWalker<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.nested == 0 && self.skip == 0 {
            let inner = self.a.query(q, &self.scope.clone());
            for c in inner {
                self.lineage.extend(&c.lineage);
            }
        }
        self.nested += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.nested -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.skip = self.skip.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if self.skip > 0 {
            self.skip += 1;
            return ControlFlow::Continue(());
        }
        if self.nested > 0 {
            return ControlFlow::Continue(());
        }
        if let Some(name) = text_function_call(e, self.a.dialect) {
            // Its text is a definition or a statement (masked as such
            // by the built-in rules); its arguments are object ids, so
            // only what they read outside the system catalogs counts.
            self.lineage.sources.insert(ColumnRef {
                schema: "pg_catalog".to_owned(),
                table: metadata::FUNCTION_TABLE.to_owned(),
                column: name,
            });
            if let Expr::Function(f) = e {
                if let sqlparser::ast::FunctionArguments::List(l) = &f.args {
                    for a in &l.args {
                        let arg = match a {
                            sqlparser::ast::FunctionArg::Unnamed(
                                sqlparser::ast::FunctionArgExpr::Expr(x),
                            )
                            | sqlparser::ast::FunctionArg::Named {
                                arg: sqlparser::ast::FunctionArgExpr::Expr(x),
                                ..
                            } => x,
                            _ => continue,
                        };
                        let mut l = self.a.expr(arg, self.scope);
                        l.sources
                            .retain(|c| !SYSTEM_SCHEMAS.contains(&c.schema.as_str()));
                        self.lineage.extend(&l);
                    }
                }
            }
            self.skip = 1;
            return ControlFlow::Continue(());
        }
        match e {
            // A row's system columns (its table's OID, its place) are
            // no value of the row.
            Expr::Identifier(i) if self.system_column(&norm(i)) => {}
            Expr::CompoundIdentifier(parts)
                if parts.len() >= 2 && self.system_column(&norm(&parts[parts.len() - 1])) => {}
            Expr::Identifier(i) => {
                let name = self.a.col(i);
                if let Some(l) = self.scope.column(&name) {
                    self.lineage.extend(&l);
                } else if let Some(r) = self.scope.rel(&name) {
                    // A whole-row reference: `row_to_json(c)`, `c::text`.
                    for (_, l) in r.columns.clone() {
                        self.lineage.extend(&l);
                    }
                } else if !self.scope.rels.is_empty() {
                    // Not a column the catalog knows (added or renamed
                    // since it was read?): its origin is unknown.
                    self.lineage
                        .unknown
                        .push(format!("column {name} is not in the catalog"));
                }
            }
            Expr::CompoundIdentifier(parts) => {
                let parts: Vec<String> = parts.iter().map(|p| self.a.col(p)).collect();
                let (rel, col) = match parts.as_slice() {
                    [r, c] => (r.as_str(), c.as_str()),
                    [.., r, c] => (r.as_str(), c.as_str()),
                    _ => return ControlFlow::Continue(()),
                };
                match self.scope.rel(rel) {
                    Some(r) if r.columns.is_empty() => self
                        .lineage
                        .unknown
                        .push(format!("the columns of {rel} are not known")),
                    Some(r) => match r.columns.iter().find(|(n, _)| n == col) {
                        Some((_, l)) => self.lineage.extend(&l.clone()),
                        // `(c).field` of a composite, or a column the
                        // catalog does not list: the whole relation.
                        None => {
                            for (_, l) in r.columns.clone() {
                                self.lineage.extend(&l);
                            }
                        }
                    },
                    None => match self.scope.column(rel) {
                        // `composite_col.field`.
                        Some(l) => self.lineage.extend(&l),
                        // A qualifier lineage cannot resolve (a relation
                        // it does not model): fail-closed.
                        None => self
                            .lineage
                            .unknown
                            .push(format!("{rel}.{col} names no relation sqlgate follows")),
                    },
                }
            }
            // `(c.*)::text`, `row(c.*)`: every column of the relation.
            Expr::QualifiedWildcard(name, _) => self.whole_relation(name),
            // MySQL full-text search names its columns outside any
            // expression: not followed.
            Expr::MatchAgainst { .. } => self
                .lineage
                .unknown
                .push("MATCH ... AGAINST is not followed".to_owned()),
            Expr::Wildcard(_) => {
                for r in self.scope.rels.clone() {
                    for (_, l) in r.columns {
                        self.lineage.extend(&l);
                    }
                }
            }
            Expr::Function(f) => {
                let parts = object_parts(&f.name);
                let known = match parts.as_slice() {
                    [n] => function_tags(self.a.dialect, None, n).is_empty(),
                    [s, n] => function_tags(self.a.dialect, Some(s), n).is_empty(),
                    _ => false,
                } && !parts.last().is_some_and(|n| reads_tables(n));
                if !known {
                    self.lineage
                        .unknown
                        .push(format!("function {} is not known to the gateway", f.name));
                }
                // `row(c.*)`, `to_json(c.*)`: every column of `c` (a bare
                // `*`, as in count(*), reads no value).
                if let sqlparser::ast::FunctionArguments::List(l) = &f.args {
                    for a in &l.args {
                        if let sqlparser::ast::FunctionArg::Unnamed(
                            sqlparser::ast::FunctionArgExpr::QualifiedWildcard(name),
                        ) = a
                        {
                            self.whole_relation(name);
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
