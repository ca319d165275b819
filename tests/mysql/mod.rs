//! The MySQL gateway, through mysql_async and the mariadb client.

mod approvals;
mod busy;
mod commands;
mod hostile;
mod masking;
mod masking_corpus;
mod metadata;
mod oidc;
mod policy;
mod protocol_fuzz;
mod recording;
mod reflection;
mod relay;
mod session;
mod tools;
