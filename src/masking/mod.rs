//! Masking on the wire: the protocol crates' result-mask traits
//! implemented over the policy's per-statement masks.

pub mod dates;
pub mod mysql;
pub mod pg;
pub mod pg_names;

use std::sync::Arc;

use crate::policy::mask::functions::MaskFunction;
use crate::policy::mask::lineage::ColumnRef;
use crate::policy::mask::result::StatementMasks;

/// Each result column's cell mask, made by `make` from its function, or
/// `None` when no column is masked. `origins`: the table column the wire
/// says each result column is a plain reference to; `names`: their names.
fn cells<T: ?Sized>(
    masks: &StatementMasks,
    origins: &[Option<ColumnRef>],
    names: &[&[u8]],
    make: impl Fn(MaskFunction) -> Arc<T>,
) -> Option<Vec<Option<Arc<T>>>> {
    let cells: Vec<Option<Arc<T>>> = masks
        .columns(origins, names)
        .into_iter()
        .map(|f| f.map(&make))
        .collect();
    cells.iter().any(Option::is_some).then_some(cells)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::policy::mask::functions::MaskFunction;

    /// One of each masking function (two roundings: to digits and to
    /// tens), for the wire encodings' tests.
    pub(crate) fn every_function() -> Vec<MaskFunction> {
        vec![
            MaskFunction::Redact,
            MaskFunction::Null,
            MaskFunction::Email,
            MaskFunction::Keep { first: 1, last: 2 },
            MaskFunction::Hash,
            MaskFunction::Regex {
                pattern: regex::Regex::new("[0-9]").expect("a valid pattern"),
                replace: "#".into(),
            },
            MaskFunction::YearOnly,
            MaskFunction::Round(2),
            MaskFunction::Round(-1),
        ]
    }
}
