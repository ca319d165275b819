//! The PostgreSQL gateway, through tokio-postgres, psql, pgbench and a raw
//! protocol client.

mod approvals;
mod approvals_around;
mod approvals_shared;
mod auth;
mod busy;
mod catalog;
mod hostile;
mod live;
mod masking;
mod masking_corpus;
mod metadata;
mod metrics;
mod oidc;
pub mod policy;
mod policy_tools;
mod pool;
mod protocol_fuzz;
mod protocol_state;
mod recording;
mod recording_prepared;
mod recording_shapes;
mod reflection;
mod relay;
mod tools;
