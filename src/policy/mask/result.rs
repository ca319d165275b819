//! The masks of one statement's results, protocol-neutral: lineage from
//! the statement's text decides by output position, and the wire's own
//! metadata (PostgreSQL table OID and attribute number, MySQL schema,
//! org_table and org_name, resolved to table columns) is ground truth for
//! plain references. When the two disagree on the number of columns, or
//! the text says nothing of its results (a procedure call), every column
//! of a statement that reads masked values is redacted unless the wire
//! says it is a plain reference to an unmasked column: the gateway does
//! not guess.

use std::sync::Arc;

use super::functions::MaskFunction;
use super::lineage::ColumnRef;
use super::metadata::NamedTexts;
use super::rules::{ColumnPlan, MaskRule};

/// What a statement's results need.
#[derive(Debug, Clone)]
pub struct StatementMasks {
    /// The lineage plan by output position (`None`: the text says
    /// nothing of the result's columns, e.g. SHOW or FETCH).
    pub plan: Option<Vec<ColumnPlan>>,
    /// The statement reads masked columns (so its errors may quote them).
    pub reads_masked: bool,
    /// It runs code whose reads are unknown: anything it says (notices,
    /// errors) may be a masked value, whole.
    pub opaque: bool,
    /// The rules that apply to the identity.
    pub rules: Arc<Vec<MaskRule>>,
    /// A procedure call: its result sets are unknown from the text (one
    /// statement, any number of results).
    pub procedure: bool,
    /// A plan or a MySQL `SHOW`: masked by column names alone (no column
    /// of such a result holds a row's value; the named ones quote SQL).
    pub named: Option<NamedTexts>,
    /// The output columns' names by position (with `plan`; for
    /// `sqlgate explain`).
    pub names: Vec<String>,
}

impl StatementMasks {
    /// How much of the statement's errors and notices is hidden.
    pub fn scrub(&self) -> sqlgate_net::scrub::Scrub {
        use sqlgate_net::scrub::Scrub;
        match (self.opaque, self.reads_masked) {
            (true, _) => Scrub::All,
            (false, true) => Scrub::Values,
            _ => Scrub::Keep,
        }
    }

    /// Each result column's masking function (`None`: clear), given the
    /// base column the wire says each is a plain reference to and its
    /// name.
    pub fn columns(
        &self,
        origins: &[Option<ColumnRef>],
        names: &[&[u8]],
    ) -> Vec<Option<MaskFunction>> {
        if let Some(named) = self.named {
            return names.iter().map(|n| named.function(n)).collect();
        }
        let plan = self.plan.as_ref().filter(|p| p.len() == origins.len());
        origins
            .iter()
            .enumerate()
            .map(|(i, origin)| {
                let ground = origin
                    .as_ref()
                    .and_then(|c| self.rules.iter().find(|r| r.covers(c)))
                    .map(|r| r.function.clone());
                let by_lineage = match plan.map(|p| &p[i]) {
                    Some(ColumnPlan::Clear) => None,
                    Some(ColumnPlan::Masked { rule, derived, .. }) => {
                        let f = &self.rules[*rule].function;
                        Some(if *derived { for_derived(f) } else { f.clone() })
                    }
                    Some(ColumnPlan::RedactUnknown { .. }) => Some(MaskFunction::Redact),
                    // A plain reference to a column no rule covers is
                    // that column's value: clear.
                    None if origin.is_some() => None,
                    None if self.reads_masked => Some(MaskFunction::Redact),
                    None => None,
                };
                // A plain reference to a masked column gets its rule's
                // function, whatever lineage made of it.
                ground.or(by_lineage)
            })
            .collect()
    }
}

/// The function a value derived from a masked column gets: the rule's own
/// when it reveals nothing of the value's shape (`null`, `redact`, `hash`),
/// otherwise `redact`. Shape-keeping functions on a transformed value
/// would show the parts they keep of *that* value: `keep_last = 4` of
/// `reverse(ssn)` shows the first four digits; `email` of
/// `reverse(email)` shows the reversed local part as the "domain".
pub fn for_derived(f: &MaskFunction) -> MaskFunction {
    match f {
        MaskFunction::Null | MaskFunction::Hash => f.clone(),
        _ => MaskFunction::Redact,
    }
}
