//! The words both protocol crates use of a session: who it is, where it
//! goes, the limits of its relay and why it ended. Each protocol fills in
//! its own id and pool types.
//!
//! This module must never name a protocol's message or error.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::identity::Identity;

/// Where an authenticated session goes.
#[derive(Debug)]
pub struct Route<P> {
    /// The target's name.
    pub target: String,
    /// Its pool of server connections.
    pub pool: Arc<P>,
}

impl<P> Clone for Route<P> {
    fn clone(&self) -> Self {
        Route {
            target: self.target.clone(),
            pool: Arc::clone(&self.pool),
        }
    }
}

/// Who a session is, for hooks and logs.
#[derive(Debug, Clone)]
pub struct SessionInfo<Id> {
    /// The gateway's id of the session (what the client sees as its
    /// server process or connection id).
    pub id: Id,
    /// The gateway user.
    pub user: String,
    /// Who it is: groups, targets, how it logged in.
    pub identity: Arc<Identity>,
    /// The target.
    pub target: String,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client connection is encrypted.
    pub tls: bool,
}

/// Limits of one session's relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Longest statement text (PostgreSQL Query or Parse, MySQL
    /// COM_QUERY or COM_STMT_PREPARE): these are held whole for the
    /// statement hook.
    pub max_statement_len: usize,
}

/// Why a session ended, as the recording and the logs say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client said goodbye or closed its connection.
    ClientLeft,
    /// The client broke the protocol, or its socket failed.
    ClientProtocolError,
    /// A limit of the gateway's own was reached.
    Limit,
    /// The server answered something the relay could not place.
    Desync,
    /// The server connection closed or failed.
    ServerLost,
    /// The session's login token expired.
    TokenExpired,
    /// An operator ended it.
    ByOperator,
    /// The gateway shut down.
    GatewayShutdown,
    /// A message could be neither recorded before it ran nor refused in
    /// place.
    NotRecorded,
    /// The client changed its user (MySQL COM_CHANGE_USER): a new
    /// session follows on the same connection.
    ChangeUser,
}

impl SessionEnd {
    /// The words recorded for it.
    pub fn reason(self) -> &'static str {
        match self {
            SessionEnd::ClientLeft => "client left",
            SessionEnd::ClientProtocolError => "client protocol error",
            SessionEnd::Limit => "limit",
            SessionEnd::Desync => "relay desync",
            SessionEnd::ServerLost => "server connection lost",
            SessionEnd::TokenExpired => "token expired",
            SessionEnd::ByOperator => "ended by an operator",
            SessionEnd::GatewayShutdown => "gateway shutdown",
            SessionEnd::NotRecorded => "refused: not recorded",
            SessionEnd::ChangeUser => "change user",
        }
    }
}
