//! MySQL session pooling on `sqlgate_net`'s pool. Idle connections are
//! keyed by the capability flags and collation they were opened with
//! ([`ConnKey`]), because those change the packets the server sends and the
//! relay forwards them unchanged. Before a connection goes back:
//! COM_RESET_CONNECTION and COM_INIT_DB of the target's schema.

use std::sync::{Arc, Mutex};

use sqlgate_net::pool::Connector;
pub use sqlgate_net::pool::PoolConfig;

use crate::backend::{BackendConfig, BackendConn, BackendError, ConnKey, ServerInfo};
use crate::messages::err::ClientError;

/// Opens server connections for one target, remembering the server's
/// greeting for the gateway's own.
#[derive(Debug)]
pub struct MysqlConnector {
    backend: BackendConfig,
    info: Mutex<Option<ServerInfo>>,
}

impl MysqlConnector {
    /// The target's connection settings.
    pub fn backend(&self) -> &BackendConfig {
        &self.backend
    }

    fn cached_info(&self) -> Option<ServerInfo> {
        self.info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Connector for MysqlConnector {
    type Conn = BackendConn;
    type Key = ConnKey;
    type Error = BackendError;

    fn target(&self) -> &str {
        &self.backend.target
    }

    async fn connect(&self, key: ConnKey) -> Result<BackendConn, BackendError> {
        let conn = BackendConn::connect(&self.backend, key).await?;
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.info.clone());
        Ok(conn)
    }

    fn key_of(conn: &BackendConn) -> ConnKey {
        conn.key
    }

    fn is_alive(conn: &mut BackendConn) -> bool {
        conn.is_alive()
    }
}

/// The pool of one MySQL target.
pub type Pool = sqlgate_net::pool::Pool<MysqlConnector>;
/// A server connection lent to one session.
pub type Lease = sqlgate_net::pool::Lease<MysqlConnector>;
/// Why a session got no server connection.
pub type PoolError = sqlgate_net::pool::PoolError<BackendError>;

/// An empty pool for a target.
pub fn new_pool(backend: BackendConfig, config: PoolConfig) -> Arc<Pool> {
    Pool::new(
        MysqlConnector {
            backend,
            info: Mutex::new(None),
        },
        config,
    )
}

/// The ERR a client gets when its session gets no connection.
pub fn client_error(e: &PoolError, target: &str) -> ClientError {
    match e {
        PoolError::Exhausted { .. } => {
            ClientError::new(1040, b"08004", format!("{e}; retry later"))
        }
        // ER_TOO_MANY_USER_CONNECTIONS
        PoolError::UserShare { .. } => ClientError::new(1203, b"42000", e.to_string()),
        PoolError::Connect(e) => e.client_error(target),
    }
}

/// The server's greeting as last seen; connects once to learn it.
pub async fn server_info(pool: &Arc<Pool>, key: ConnKey) -> Result<ServerInfo, PoolError> {
    if let Some(info) = pool.connector().cached_info() {
        return Ok(info);
    }
    let lease = pool.acquire(key).await?;
    let info = lease.conn_ref().info.clone();
    release(lease).await;
    Ok(info)
}

/// Resets the connection and returns it to the pool; drops it if the
/// reset fails.
pub async fn release(mut lease: Lease) {
    let timeout = lease.pool().config().reset_timeout;
    let backend = lease.pool().connector().backend.clone();
    match tokio::time::timeout(timeout, lease.conn().reset(&backend.database)).await {
        Ok(Ok(())) => lease.give_back(),
        Ok(Err(e)) => {
            tracing::warn!(target_name = %backend.target, error = %e, "server connection dropped: reset failed")
        }
        Err(_) => {
            tracing::warn!(target_name = %backend.target, "server connection dropped: reset timed out")
        }
    }
}
