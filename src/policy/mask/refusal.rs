//! Why masking refuses a statement: one type the guard and its parts
//! (relations, storing, predicates) all answer with.

/// Why a statement is refused by masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskRefusal {
    /// One line.
    pub message: String,
    /// What to do.
    pub hint: String,
    /// The catalog snapshot lacks something the statement names: it
    /// should be read again.
    pub stale: bool,
}
