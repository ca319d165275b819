//! Where servers quote values as text of something else: object
//! definitions (views, routines, triggers, rules, policies, defaults,
//! checks, generated columns, partition bounds), other sessions'
//! statements (`pg_stat_activity`, process lists, `pg_stat_statements`)
//! and query plans. A literal there can be a masked value, so for every
//! identity with masks these channels are masked too, by built-in rules
//! that follow the same paths as a DBA's: lineage, the wire's origin of
//! each column, predicates (a `LIKE` on a definition is a question about
//! its literals) and derived values (a `substr` of a definition is not a
//! definition: redacted).
//!
//! Per channel (policies/README.md says the same):
//! - SQL texts (definitions, statements) keep their words and lose their
//!   literals and comments (`literals::scrub_literals`);
//! - raw expression trees (`pg_node_tree` columns, trigger arguments,
//!   lock data, full-text index words) are redacted whole;
//! - plans (EXPLAIN) lose their strings, and their numbers only inside
//!   expressions (`Filter:`, `Index Cond:` ...), keeping costs and rows;
//! - MySQL `SHOW` results are masked by the wire name of their columns
//!   (`Create View`, `Info`, `Statement`, `Default` ...);
//! - set-returning functions that list other sessions' statements
//!   (`pg_stat_get_activity`, `pg_stat_statements(...)`) are refused: the
//!   views over them are masked by column.
//!
//! This module must never return a rule that lets a text channel through
//! unmasked for an identity with masks.

use super::functions::MaskFunction;
use super::rules::{MaskRule, OnUnknown};
use crate::policy::parse::SqlDialect;

/// The schema and table of the pseudo-columns metadata functions return
/// (`pg_catalog.(function).pg_get_viewdef`).
pub const FUNCTION_TABLE: &str = "(function)";

/// PostgreSQL columns holding SQL texts that may quote values.
const PG_TEXTS: &[&str] = &[
    "pg_catalog.pg_views.definition",
    "pg_catalog.pg_matviews.definition",
    "pg_catalog.pg_rules.definition",
    "pg_catalog.pg_indexes.indexdef",
    "pg_catalog.pg_policies.qual",
    "pg_catalog.pg_policies.with_check",
    "pg_catalog.pg_proc.prosrc",
    "pg_catalog.pg_stat_activity.query",
    "*.pg_stat_statements.query",
    "information_schema.views.view_definition",
    "information_schema.routines.routine_definition",
    "information_schema.columns.column_default",
    "information_schema.columns.generation_expression",
    "information_schema.check_constraints.check_clause",
    "information_schema.triggers.action_statement",
    "information_schema.triggers.action_condition",
    "information_schema.parameters.parameter_default",
    "information_schema.attributes.attribute_default",
    "information_schema.domains.domain_default",
];

/// PostgreSQL functions returning SQL texts that may quote values.
const PG_TEXT_FUNCTIONS: &[&str] = &[
    "pg_get_viewdef",
    "pg_get_ruledef",
    "pg_get_indexdef",
    "pg_get_triggerdef",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_functiondef",
    "pg_get_function_arguments",
    "pg_get_function_arg_default",
    "pg_get_function_sqlbody",
    "pg_get_partkeydef",
    "pg_get_partition_constraintdef",
    "pg_get_statisticsobjdef",
    "pg_get_statisticsobjdef_expressions",
    "pg_stat_get_backend_activity",
];

/// PostgreSQL columns holding values in forms that cannot be scrubbed
/// (expression trees, raw defaults, trigger arguments, large objects).
const PG_OPAQUE: &[&str] = &[
    "pg_catalog.pg_attrdef.adbin",
    "pg_catalog.pg_constraint.conbin",
    "pg_catalog.pg_index.indexprs",
    "pg_catalog.pg_index.indpred",
    "pg_catalog.pg_rewrite.ev_qual",
    "pg_catalog.pg_rewrite.ev_action",
    "pg_catalog.pg_trigger.tgqual",
    "pg_catalog.pg_trigger.tgargs",
    "pg_catalog.pg_policy.polqual",
    "pg_catalog.pg_policy.polwithcheck",
    "pg_catalog.pg_proc.proargdefaults",
    "pg_catalog.pg_proc.prosqlbody",
    "pg_catalog.pg_proc.probin",
    "pg_catalog.pg_partitioned_table.partexprs",
    "pg_catalog.pg_class.relpartbound",
    "pg_catalog.pg_statistic_ext.stxexprs",
    "pg_catalog.pg_attribute.attmissingval",
    "pg_catalog.pg_type.typdefaultbin",
    "pg_catalog.pg_type.typdefault",
    "pg_catalog.pg_largeobject.data",
];

/// Set-returning functions listing other sessions' statements.
const PG_TEXT_SETS: &[&str] = &["pg_stat_get_activity", "pg_stat_statements"];

/// MySQL/MariaDB `information_schema` columns holding SQL texts.
const MYSQL_TEXTS: &[&str] = &[
    "information_schema.views.view_definition",
    "information_schema.routines.routine_definition",
    "information_schema.columns.column_default",
    "information_schema.columns.generation_expression",
    "information_schema.check_constraints.check_clause",
    "information_schema.triggers.action_statement",
    "information_schema.triggers.action_condition",
    "information_schema.events.event_definition",
    "information_schema.partitions.partition_expression",
    "information_schema.partitions.subpartition_expression",
    "information_schema.partitions.partition_description",
    "information_schema.processlist.info",
    "information_schema.processlist.info_binary",
    "information_schema.innodb_trx.trx_query",
];

/// MySQL/MariaDB columns holding raw values.
const MYSQL_OPAQUE: &[&str] = &[
    "information_schema.innodb_locks.lock_data",
    "information_schema.innodb_ft_index_cache.word",
    "information_schema.innodb_ft_index_table.word",
];

/// Columns of MySQL `SHOW` results holding SQL texts, by wire name.
const SHOW_TEXTS: &[&str] = &[
    "Create Table",
    "Create View",
    "Create Procedure",
    "Create Function",
    "Create Package",
    "Create Package Body",
    "Create Event",
    "Create Trigger",
    "SQL Original Statement",
    "Statement",
    "Info",
];

/// Columns of plans, by wire name (PostgreSQL's text, YAML, XML or JSON
/// plan; MariaDB's JSON plans).
const PLAN_COLUMNS: &[&str] = &[
    "QUERY PLAN",
    "EXPLAIN",
    "ANALYZE",
    "SHOW EXPLAIN",
    "SHOW ANALYZE",
];

/// The name of the built-in rule for SQL texts.
pub const TEXTS_RULE: &str = "built-in: values quoted in definitions and statement texts";
/// The name of the built-in rule for raw values.
pub const OPAQUE_RULE: &str = "built-in: values in expression trees";

fn rule(name: &str, columns: &[&str], function: MaskFunction) -> MaskRule {
    MaskRule {
        name: name.to_owned(),
        columns: columns
            .iter()
            .filter_map(|c| super::rules::column_pattern(c))
            .collect(),
        function,
        except_users: Vec::new(),
        except_groups: Vec::new(),
        targets: vec!["*".to_owned()],
        predicates_allowed: false,
        on_unknown: OnUnknown::Pass,
        origin: "built-in".to_owned(),
    }
}

/// The built-in rules added after a DBA's rules for every identity that
/// has masks on a target.
pub fn rules(dialect: SqlDialect) -> Vec<MaskRule> {
    match dialect {
        SqlDialect::Postgres => {
            let mut texts: Vec<String> = PG_TEXTS.iter().map(|s| s.to_string()).collect();
            texts.extend(
                PG_TEXT_FUNCTIONS
                    .iter()
                    .map(|f| format!("pg_catalog.{FUNCTION_TABLE}.{f}")),
            );
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            vec![
                rule(TEXTS_RULE, &texts, MaskFunction::ScrubLiterals(dialect)),
                rule(OPAQUE_RULE, PG_OPAQUE, MaskFunction::Redact),
            ]
        }
        SqlDialect::Mysql => vec![
            rule(
                TEXTS_RULE,
                MYSQL_TEXTS,
                MaskFunction::ScrubLiterals(dialect),
            ),
            rule(OPAQUE_RULE, MYSQL_OPAQUE, MaskFunction::Redact),
        ],
    }
}

/// The column names the built-in rules mask (their patterns' last part)
/// and the functions whose texts they mask: a statement that names one
/// anywhere is a statement about definitions or statement texts. Fixed per
/// dialect, so made once.
pub fn names(dialect: SqlDialect) -> &'static [String] {
    static PG: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| names_of(&rules(SqlDialect::Postgres)));
    static MY: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| names_of(&rules(SqlDialect::Mysql)));
    match dialect {
        SqlDialect::Postgres => &PG,
        SqlDialect::Mysql => &MY,
    }
}

fn names_of(rules: &[MaskRule]) -> Vec<String> {
    let mut out: Vec<String> = rules
        .iter()
        .flat_map(|r| r.columns.iter().map(|[_, _, c]| c.to_ascii_lowercase()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A function whose result is a SQL text that may quote values.
pub fn text_function(dialect: SqlDialect, name: &str) -> bool {
    dialect == SqlDialect::Postgres && PG_TEXT_FUNCTIONS.contains(&name)
}

/// A set-returning function listing other sessions' statements.
pub fn text_set_function(dialect: SqlDialect, name: &str) -> bool {
    dialect == SqlDialect::Postgres && PG_TEXT_SETS.contains(&name)
}

/// Results whose columns are masked by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedTexts {
    /// A MySQL `SHOW` or `DESCRIBE`: its text columns.
    Show(SqlDialect),
    /// A plan (EXPLAIN, MariaDB ANALYZE).
    Plan(SqlDialect),
}

impl NamedTexts {
    /// The masking function of a column of this name, if any.
    pub fn function(self, name: &[u8]) -> Option<MaskFunction> {
        match self {
            NamedTexts::Show(d) => {
                if name.eq_ignore_ascii_case(b"Default") {
                    return Some(MaskFunction::ScrubDefault(d));
                }
                // SHOW ENGINE ... STATUS: lock dumps print rows' bytes
                // (`asc ann@example.com`), not SQL: redacted whole.
                if name == b"Status" {
                    return Some(MaskFunction::Redact);
                }
                if PLAN_COLUMNS.iter().any(|c| c.as_bytes() == name) {
                    return Some(MaskFunction::ScrubPlan(d));
                }
                SHOW_TEXTS
                    .iter()
                    .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
                    .then_some(MaskFunction::ScrubLiterals(d))
            }
            NamedTexts::Plan(d) => PLAN_COLUMNS
                .iter()
                .any(|c| c.as_bytes().eq_ignore_ascii_case(name))
                .then_some(MaskFunction::ScrubPlan(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::mask::lineage::ColumnRef;

    fn col(s: &str) -> ColumnRef {
        let [schema, table, column] = super::super::rules::column_pattern(s).unwrap();
        ColumnRef {
            schema,
            table,
            column,
        }
    }

    #[test]
    fn every_listed_channel_has_a_rule() {
        let pg = rules(SqlDialect::Postgres);
        for c in PG_TEXTS.iter().chain(PG_OPAQUE) {
            let c = col(&c.replace('*', "public"));
            assert!(pg.iter().any(|r| r.covers(&c)), "{c}");
        }
        assert!(pg[0].covers(&col("pg_catalog.(function).pg_get_viewdef")));
        let my = rules(SqlDialect::Mysql);
        assert!(my[0].covers(&col("INFORMATION_SCHEMA.PROCESSLIST.INFO")));
        assert!(my[1].covers(&col("information_schema.INNODB_LOCKS.lock_data")));
        assert!(!my[0].covers(&col("information_schema.columns.column_name")));
    }

    #[test]
    fn show_columns_by_name() {
        let show = NamedTexts::Show(SqlDialect::Mysql);
        assert!(show.function(b"Create View").is_some());
        assert!(show.function(b"Info").is_some());
        assert!(show.function(b"View").is_none());
        assert!(show.function(b"Field").is_none());
        assert!(matches!(
            show.function(b"Status"),
            Some(MaskFunction::Redact)
        ));
        let plan = NamedTexts::Plan(SqlDialect::Postgres);
        assert!(plan.function(b"QUERY PLAN").is_some());
        assert!(plan.function(b"id").is_none());
    }
}
