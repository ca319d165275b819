//! Masking on the wire: the protocol crates' result-mask traits
//! implemented over the policy's per-statement masks.

pub mod dates;
pub mod mysql;
pub mod pg;
