//! `[[mask]]` rules and the masking plan of a statement for an identity:
//! which output columns are masked by which rule, and why.

use super::columns::{ColumnRef, OutputColumn};
use super::functions::MaskFunction;

/// What to do with an output column whose origin cannot be known in a
/// statement that touches masked columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnknown {
    /// Refuse the statement (the default).
    Refuse,
    /// Redact the column.
    Redact,
    /// Let it pass (the built-in rules: an unknown function does not
    /// read definitions or statement texts unless given one, and then its
    /// result is derived from them).
    Pass,
}

/// One `[[mask]]`.
#[derive(Debug, Clone)]
pub struct MaskRule {
    /// Its name (given, or made from its columns).
    pub name: String,
    /// `schema.table.column` patterns; `*` matches any one part.
    pub columns: Vec<[String; 3]>,
    /// What masked values become.
    pub function: MaskFunction,
    /// Users it does not apply to.
    pub except_users: Vec<String>,
    /// Groups it does not apply to.
    pub except_groups: Vec<String>,
    /// Targets it applies to (`*`: all).
    pub targets: Vec<String>,
    /// Whether predicates on masked columns are allowed.
    pub predicates_allowed: bool,
    /// Output columns of unknown origin.
    pub on_unknown: OnUnknown,
    /// Where it was written.
    pub origin: String,
}

/// Parses a `schema.table.column` pattern.
pub fn column_pattern(s: &str) -> Option<[String; 3]> {
    let parts: Vec<&str> = s.split('.').collect();
    match parts.as_slice() {
        [a, b, c] if !a.is_empty() && !b.is_empty() && !c.is_empty() => {
            Some([a.to_string(), b.to_string(), c.to_string()])
        }
        _ => None,
    }
}

fn part_matches(pattern: &str, value: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(value),
        Some((pre, post)) => {
            let v = value.to_ascii_lowercase();
            v.len() >= pre.len() + post.len()
                && v.starts_with(&pre.to_ascii_lowercase())
                && v.ends_with(&post.to_ascii_lowercase())
        }
    }
}

impl MaskRule {
    /// Whether the rule masks this column.
    pub fn covers(&self, c: &ColumnRef) -> bool {
        self.columns.iter().any(|[s, t, col]| {
            part_matches(s, &c.schema) && part_matches(t, &c.table) && part_matches(col, &c.column)
        })
    }

    /// One of the built-in rules for texts quoting values
    /// (`mask::metadata`), not a DBA's.
    pub fn builtin(&self) -> bool {
        self.origin == "built-in"
    }

    /// Whether the rule applies to this identity on this target.
    pub fn applies(&self, user: &str, groups: &[String], target: &str) -> bool {
        let exempt = self.except_users.iter().any(|u| u == user)
            || self.except_groups.iter().any(|g| groups.contains(g));
        !exempt && self.covers_target(target)
    }

    /// Whether the rule masks columns on this target (for anyone).
    pub fn covers_target(&self, target: &str) -> bool {
        crate::config::check::target_listed(&self.targets, target)
    }
}

/// What happens to one output column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnPlan {
    /// Its values pass unchanged.
    Clear,
    /// Its values are masked by the rule (index into the rules), with the
    /// rule's own function (`derived == false`) or as a derived value.
    Masked {
        /// The rule.
        rule: usize,
        /// Computed from masked columns rather than a plain reference.
        derived: bool,
        /// The masked sources, for explanations.
        sources: Vec<ColumnRef>,
    },
    /// Its origin is unknown in a statement that touches masked columns,
    /// and a rule says to redact such columns.
    RedactUnknown {
        /// Why the origin is unknown.
        why: String,
    },
}

/// A statement's masking plan, or why it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One entry per output column.
    Columns(Vec<ColumnPlan>),
    /// Refused: an output column of unknown origin while masked columns
    /// are in play.
    Refuse {
        /// The column and why its origin is unknown.
        column: String,
        /// Why.
        why: String,
        /// The rule that makes it matter.
        rule: String,
    },
}

/// The plan for a statement's outputs under the rules that apply to the
/// identity. `touched` are the columns of every table the statement reads
/// (a statement that touches no masked column passes clear even with
/// unknown origins — unless it is `opaque`: it runs code, such as a user
/// function, that may read any table, so its unknown origins count as
/// masked under the first rule).
pub fn plan(
    rules: &[&MaskRule],
    outputs: &[OutputColumn],
    touched: &[ColumnRef],
    opaque: bool,
) -> Plan {
    let masking = rules
        .iter()
        .find(|r| touched.iter().any(|c| r.covers(c)))
        .or_else(|| rules.first().filter(|_| opaque));
    let mut out = Vec::with_capacity(outputs.len());
    for col in outputs {
        let masked: Vec<ColumnRef> = col
            .lineage
            .sources
            .iter()
            .filter(|c| rules.iter().any(|r| r.covers(c)))
            .cloned()
            .collect();
        if !col.lineage.unknown.is_empty() {
            if let Some(rule) = masking {
                let why = col.lineage.unknown.join("; ");
                match rule.on_unknown {
                    OnUnknown::Refuse => {
                        return Plan::Refuse {
                            column: col.name.clone(),
                            why,
                            rule: rule.name.clone(),
                        }
                    }
                    OnUnknown::Redact => {
                        out.push(ColumnPlan::RedactUnknown { why });
                        continue;
                    }
                    OnUnknown::Pass => {}
                }
            }
        }
        match masked.first() {
            None => out.push(ColumnPlan::Clear),
            Some(first) => {
                // A DBA's rule before a built-in one: a value that may be
                // a masked column's is masked as that column, whatever
                // definition text shares its output.
                let rule = rules
                    .iter()
                    .position(|r| !r.builtin() && masked.iter().any(|c| r.covers(c)))
                    .or_else(|| rules.iter().position(|r| r.covers(first)))
                    .expect("a masked source has a rule");
                // A text the built-in rules mask is scrubbed wherever it
                // arrives whole (collected, chosen, next to other texts),
                // redacted once something computed on it.
                let derived = if rules[rule].builtin() {
                    col.lineage.transformed
                } else {
                    !col.plain
                        || col.lineage.transformed
                        || masked.len() > 1
                        || col.lineage.sources.len() > 1
                };
                out.push(ColumnPlan::Masked {
                    rule,
                    derived,
                    sources: masked,
                });
            }
        }
    }
    Plan::Columns(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::mask::columns::Lineage;

    fn rule(name: &str, cols: &[&str], on_unknown: OnUnknown) -> MaskRule {
        MaskRule {
            name: name.into(),
            columns: cols.iter().map(|c| column_pattern(c).unwrap()).collect(),
            function: MaskFunction::Redact,
            except_users: vec![],
            except_groups: vec!["dba".into()],
            targets: vec!["*".into()],
            predicates_allowed: false,
            on_unknown,
            origin: "test".into(),
        }
    }

    fn c(s: &str) -> ColumnRef {
        let [schema, table, column] = column_pattern(s).unwrap();
        ColumnRef {
            schema,
            table,
            column,
        }
    }

    fn out(name: &str, sources: &[&str], plain: bool, unknown: &[&str]) -> OutputColumn {
        OutputColumn {
            name: name.into(),
            lineage: Lineage {
                sources: sources.iter().map(|s| c(s)).collect(),
                unknown: unknown.iter().map(|s| s.to_string()).collect(),
                transformed: !plain,
            },
            plain,
        }
    }

    #[test]
    fn patterns_match_with_wildcards() {
        let r = rule(
            "r",
            &["*.customers.ssn", "public.*.salary", "shop.cust*.email"],
            OnUnknown::Refuse,
        );
        assert!(r.covers(&c("public.customers.ssn")));
        assert!(r.covers(&c("shop.customers.SSN")));
        assert!(r.covers(&c("public.staff.salary")));
        assert!(r.covers(&c("shop.customer_archive.email")));
        assert!(!r.covers(&c("public.customers.name")));
        assert!(r.applies("agent", &[], "app"));
        assert!(!r.applies("alice", &["dba".into()], "app"));
    }

    #[test]
    fn plain_derived_clear_and_unknown_columns() {
        let r = rule("ssn", &["*.customers.ssn"], OnUnknown::Refuse);
        let touched = [c("public.customers.ssn"), c("public.customers.name")];
        let outs = [
            out("ssn", &["public.customers.ssn"], true, &[]),
            out(
                "x",
                &["public.customers.ssn", "public.customers.name"],
                false,
                &[],
            ),
            out("name", &["public.customers.name"], true, &[]),
        ];
        let Plan::Columns(p) = plan(&[&r], &outs, &touched, false) else {
            panic!()
        };
        assert!(matches!(p[0], ColumnPlan::Masked { derived: false, .. }));
        assert!(matches!(p[1], ColumnPlan::Masked { derived: true, .. }));
        assert_eq!(p[2], ColumnPlan::Clear);

        let unknown = [out("f", &[], false, &["function f is not known"])];
        assert!(matches!(
            plan(&[&r], &unknown, &touched, false),
            Plan::Refuse { .. }
        ));
        // Not touching a masked table: unknown origins pass.
        assert!(matches!(
            plan(&[&r], &unknown, &[c("public.orders.id")], false),
            Plan::Columns(_)
        ));
        let redacting = rule("ssn", &["*.customers.ssn"], OnUnknown::Redact);
        assert!(matches!(
            plan(&[&redacting], &unknown, &touched, false),
            Plan::Columns(ref p) if matches!(p[0], ColumnPlan::RedactUnknown { .. })
        ));
    }
}
