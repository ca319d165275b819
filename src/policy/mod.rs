//! Statement → risk tags → verdict. Every statement text is split and
//! parsed ([`classify`]), each statement tagged ([`risk`]), and the tags
//! judged against the rules that match the identity and target
//! ([`rules`]).

pub mod builtins;
pub mod classify;
mod corpus;
pub mod declared;
pub mod engine;
pub mod explain;
mod explain_agreement;
pub mod fingerprint;
mod fingerprint_agreement;
pub mod literals;
pub mod mask;
pub mod offload;
pub mod parse;
pub mod reach;
pub mod risk;
pub mod rules;
pub mod tags;
