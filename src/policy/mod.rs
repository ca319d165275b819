//! Statement → (later) risk tags → verdict. For now: every statement text
//! is parsed, so that the policy that comes next has an AST to judge.

pub mod parse;
