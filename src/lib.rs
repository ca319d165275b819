//! sqlgate: a database gateway that sits between clients (agents, CI
//! pipelines, people) and production databases, speaks their wire
//! protocols, and judges every SQL statement before it reaches a server.
//! Clients never hold the servers' credentials: the gateway does.
//!
//! This package is the engine (configuration, users, statement parsing and
//! later policy) and the binary; the wire protocols live in `protocols/`.

pub mod admin;
pub mod allocator;
pub mod approvals;
pub mod auth;
pub mod catalogs;
pub mod certs;
pub mod config;
pub mod hooks;
pub mod logs;
pub mod masking;
pub mod oidc;
pub mod policy;
pub mod pools;
pub mod recording;
pub mod runtime;
pub mod server;
pub mod store;

/// Installs the process-wide TLS crypto provider (ring). Call once at
/// start-up, before any TLS configuration is built; calling it again is
/// harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
