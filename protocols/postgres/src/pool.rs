//! PostgreSQL session pooling on `sqlgate_net`'s pool: how to open a
//! server connection, and the reset that must succeed before a connection
//! goes back (`Sync` for an unfinished extended exchange, `ROLLBACK` for an
//! open transaction, `DISCARD ALL`).

use std::sync::Arc;

use sqlgate_net::pool::Connector;
pub use sqlgate_net::pool::PoolConfig;

use crate::backend::{BackendConfig, BackendConn, BackendError};
use crate::messages::error_response::{ClientError, SqlState};

/// Opens server connections for one target.
#[derive(Debug)]
pub struct PgConnector {
    backend: BackendConfig,
}

impl PgConnector {
    /// The target's connection settings.
    pub fn backend(&self) -> &BackendConfig {
        &self.backend
    }
}

impl Connector for PgConnector {
    type Conn = BackendConn;
    /// Every PostgreSQL session can use every connection of its target.
    type Key = ();
    type Error = BackendError;

    fn target(&self) -> &str {
        &self.backend.target
    }

    async fn connect(&self, _key: ()) -> Result<BackendConn, BackendError> {
        BackendConn::connect(&self.backend).await
    }

    fn key_of(_conn: &BackendConn) {}

    fn is_alive(conn: &mut BackendConn) -> bool {
        conn.is_alive()
    }
}

/// The pool of one PostgreSQL target.
pub type Pool = sqlgate_net::pool::Pool<PgConnector>;
/// A server connection lent to one session.
pub type Lease = sqlgate_net::pool::Lease<PgConnector>;
/// Why a session got no server connection.
pub type PoolError = sqlgate_net::pool::PoolError<BackendError>;

/// An empty pool for a target.
pub fn new_pool(backend: BackendConfig, config: PoolConfig) -> Arc<Pool> {
    Pool::new(PgConnector { backend }, config)
}

/// The FATAL error a client gets when its session gets no connection.
pub fn client_error(e: &PoolError, target: &str) -> ClientError {
    match e {
        PoolError::Exhausted { .. } => {
            ClientError::fatal(SqlState::TOO_MANY_CONNECTIONS, e.to_string())
                .with_hint("retry later, or raise the target's pool_size")
        }
        PoolError::UserShare { .. } => {
            ClientError::fatal(SqlState::TOO_MANY_CONNECTIONS, e.to_string())
                .with_hint("close a session of this user, or raise the target's max_per_user")
        }
        PoolError::Connect(e) => e.client_error(target),
    }
}

/// Resets the connection and returns it to the pool; drops it if the
/// reset fails or takes too long.
pub async fn release(mut lease: Lease, status: u8, unsynced: bool) {
    let timeout = lease.pool().config().reset_timeout;
    let target = lease.pool().connector().backend.target.clone();
    match tokio::time::timeout(timeout, lease.conn().reset(status, unsynced)).await {
        Ok(Ok(())) => lease.give_back(),
        Ok(Err(e)) => {
            tracing::warn!(target_name = %target, error = %e, "server connection dropped: reset failed")
        }
        Err(_) => {
            tracing::warn!(target_name = %target, "server connection dropped: reset timed out")
        }
    }
}
