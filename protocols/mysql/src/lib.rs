//! The MySQL/MariaDB side of sqlgate: a frontend that speaks the protocol to
//! stock clients, backend connections authenticated with the gateway's own
//! credentials, session pools and a relay of raw packets.
//!
//! This crate knows the wire, never the policy: it reports what it sees
//! through [`hooks::Hooks`]. `opensrv-mysql` is deliberately not used (it
//! drops column origin metadata and answers unknown commands with OK);
//! mysql_common supplies packet types, the handshake and the scrambles.

#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod compress;
pub mod error;
pub mod frontend;
pub mod hooks;
pub mod kill;
pub mod mask;
pub mod messages;
pub mod packet;
pub mod pool;
pub mod relay;
pub mod response;
pub mod sample;
pub mod server;
pub mod stream;

pub use frontend::{FrontendConfig, Gateway};
pub use hooks::{
    AuthMethod, Hooks, Masks, Route, SessionHooks, SessionInfo, StatementOrigin, UserAuth,
};
pub use pool::{new_pool, Pool, PoolConfig};
pub use relay::RelayLimits;
