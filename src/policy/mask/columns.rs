//! What lineage says of a column: the base-table columns a value comes
//! from, why part of its origin is unknown, and whether it was
//! transformed. The lineage analysis (`lineage.rs`) computes these; the
//! masking rules (`rules.rs`) and the guard read them.
//!
//! It must never merge two origins and lose an unknown one.

use std::collections::BTreeSet;

/// A column of a base table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnRef {
    /// Schema (PostgreSQL) or database (MySQL).
    pub schema: String,
    /// Table.
    pub table: String,
    /// Column.
    pub column: String,
}

impl std::fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    /// The base-table columns it is computed from.
    pub sources: BTreeSet<ColumnRef>,
    /// Why part of its origin cannot be known (empty: fully known).
    pub unknown: Vec<String>,
    /// Computed by something other than carrying its sources' values
    /// whole (a function of them, an operator): a `substr` of a
    /// definition is not a definition (its literals may be cut open).
    pub transformed: bool,
}

impl Lineage {
    /// A value carried whole from one column.
    pub(crate) fn column(c: ColumnRef) -> Self {
        Lineage {
            sources: [c].into_iter().collect(),
            unknown: Vec::new(),
            transformed: false,
        }
    }

    /// A value whose origin cannot be known, and why.
    pub(crate) fn unknown(why: impl Into<String>) -> Self {
        Lineage {
            sources: BTreeSet::new(),
            unknown: vec![why.into()],
            transformed: false,
        }
    }

    /// Adds `other`'s origins to this value's.
    pub(crate) fn extend(&mut self, other: &Lineage) {
        self.transformed |= other.transformed;
        self.sources.extend(other.sources.iter().cloned());
        for u in &other.unknown {
            if !self.unknown.contains(u) {
                self.unknown.push(u.clone());
            }
        }
    }
}

/// One output column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputColumn {
    /// Its name as the client sees it.
    pub name: String,
    /// Its origin.
    pub lineage: Lineage,
    /// Whether it is a plain reference to one column (no computation).
    pub plain: bool,
}
