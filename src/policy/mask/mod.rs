//! Column masking: which output columns of a statement carry values of
//! masked columns ([`lineage`]), by which rule, and how their values are
//! rewritten.

pub mod catalog;
pub mod columns;
pub mod functions;
pub mod guard;
pub mod lineage;
pub mod metadata;
mod predicates;
mod refusal;
mod relations;
pub mod result;
pub mod rules;
pub mod search_path;
mod storing;
