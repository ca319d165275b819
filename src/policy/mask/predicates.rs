//! Conditions on masked values: a filter, join, grouping, ordering,
//! deduplication, bound or set-returning argument that reads a masked
//! column answers a question about its values, and is refused where the
//! rule denies predicates. Each SELECT's conditions are followed through
//! its own FROM by lineage. It must never skip a condition because it
//! sits in a nested query, a CTE or a set operation's branch.

use std::ops::ControlFlow;

use sqlparser::ast::{SelectItem, Statement, Visit, Visitor};

use super::lineage::{norm, object_parts, output_lineage, Catalog, ColumnRef};
use super::metadata;
use super::refusal::MaskRefusal;
use super::relations::Relations;
use super::rules::MaskRule;
use crate::policy::parse::SqlDialect;

/// A condition on a masked column (or on a text the built-in rules mask)
/// where the rule denies predicates.
pub(super) fn refuse_predicates(
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

/// The constraint of a join (ON, USING, NATURAL), if it has one.
pub(super) fn join_constraint(
    op: &sqlparser::ast::JoinOperator,
) -> Option<&sqlparser::ast::JoinConstraint> {
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
        Some(sqlparser::ast::Distinct::On(on)) => {
            let mut exprs = on.clone();
            // `DISTINCT ON (2)` names an output by position, as ORDER BY
            // does: every output counts then.
            if on
                .iter()
                .any(|e| matches!(unparen(e), sqlparser::ast::Expr::Value(_)))
            {
                exprs.extend(projection_exprs(s));
            }
            exprs
        }
        _ => Vec::new(),
    }
}

/// An expression without its parentheses: `(2)` is the position 2 where
/// a position may stand.
fn unparen(e: &sqlparser::ast::Expr) -> &sqlparser::ast::Expr {
    match e {
        sqlparser::ast::Expr::Nested(inner) => unparen(inner),
        other => other,
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
        match unparen(e) {
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
                    // `ORDER BY (2)` is a position too.
                    match (first, unparen(&e.expr)) {
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
