//! The PostgreSQL side of sqlgate: a frontend that speaks the protocol to
//! stock clients, backend connections authenticated with the gateway's own
//! credentials, session pools, and the relay between them.
//!
//! This crate knows the wire, never the policy: it reports what it sees
//! through [`hooks::Hooks`], which the `sqlgate` package implements. It
//! must never depend on sqlparser, the policy engine or the store.

#![warn(missing_docs)]

pub mod backend;
pub mod cancel;
pub mod error;
pub mod frame;
pub mod frontend;
pub mod hooks;
pub mod mask;
pub mod messages;
pub mod pool;
pub mod relay;
pub mod scram;

pub mod server;
pub mod stream;
pub mod tls;

pub use frontend::{FrontendConfig, Gateway};
pub use hooks::{
    AuthMethod, Effect, Hooks, Masks, Planned, Route, SessionHooks, SessionInfo, StatementOrigin,
    UserAuth,
};
pub use pool::{new_pool, Pool, PoolConfig};
pub use relay::RelayLimits;
pub use scram::ScramSecret;
pub use sqlgate_net::secret::Secret;
