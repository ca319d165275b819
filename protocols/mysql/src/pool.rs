//! Session pooling for one MySQL target: at most `size` server
//! connections, each lent to one client session for its lifetime. Idle
//! connections are keyed by the capability flags and collation they were
//! opened with, because those change the packets the server sends; a
//! session gets a connection that matches its client.
//!
//! A connection comes back only through [`Lease::release`], after
//! COM_RESET_CONNECTION; a dropped lease closes its connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::{BackendConfig, BackendConn, BackendError, ConnKey, ServerInfo};
use crate::messages::err::ClientError;

/// Pool limits for one target.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most server connections open at once.
    pub size: usize,
    /// How long a session waits for a free connection.
    pub acquire_timeout: Duration,
    /// Idle connections older than this are closed instead of reused.
    pub idle_timeout: Duration,
    /// How long a reset may take.
    pub reset_timeout: Duration,
}

/// Why a session got no server connection.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every connection was in use for the whole acquire timeout.
    #[error("all {size} server connections of target '{target}' are in use (waited {waited:?})")]
    Exhausted {
        /// The target.
        target: String,
        /// The pool size.
        size: usize,
        /// How long the session waited.
        waited: Duration,
    },
    /// Opening a connection failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl PoolError {
    /// The ERR a client gets.
    pub fn client_error(&self, target: &str) -> ClientError {
        match self {
            PoolError::Exhausted { .. } => {
                ClientError::new(1040, b"08004", format!("{self}; retry later"))
            }
            PoolError::Backend(e) => e.client_error(target),
        }
    }
}

struct Idle {
    conn: BackendConn,
    since: Instant,
}

/// The pool of one target.
pub struct Pool {
    backend: BackendConfig,
    config: PoolConfig,
    idle: Mutex<Vec<Idle>>,
    info: Mutex<Option<ServerInfo>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.backend.target)
            .finish()
    }
}

impl Pool {
    /// An empty pool.
    pub fn new(backend: BackendConfig, config: PoolConfig) -> Arc<Self> {
        Arc::new(Pool {
            permits: Arc::new(Semaphore::new(config.size)),
            idle: Mutex::new(Vec::new()),
            info: Mutex::new(None),
            backend,
            config,
        })
    }

    /// The target's connection settings.
    pub fn backend(&self) -> &BackendConfig {
        &self.backend
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // push/pop/remove only: a poisoned Vec is still consistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's greeting as last seen; connects once to learn it.
    pub async fn server_info(self: &Arc<Self>, key: ConnKey) -> Result<ServerInfo, PoolError> {
        let known = self.info.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(info) = known {
            return Ok(info);
        }
        let lease = self.acquire(key).await?;
        let info = lease.conn.info.clone();
        lease.release().await;
        Ok(info)
    }

    /// Lends a connection opened with `key`: an idle alive one, or a new
    /// one (closing an idle one of another key when the pool is full).
    pub async fn acquire(self: &Arc<Self>, key: ConnKey) -> Result<Lease, PoolError> {
        let started = Instant::now();
        let permit = tokio::time::timeout(
            self.config.acquire_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| PoolError::Exhausted {
            target: self.backend.target.clone(),
            size: self.config.size,
            waited: started.elapsed(),
        })?
        .expect("the pool never closes its semaphore");
        loop {
            let found = {
                let mut idle = self.lock_idle();
                idle.iter()
                    .rposition(|i| i.conn.key == key)
                    .map(|at| idle.swap_remove(at))
            };
            let Some(mut idle) = found else { break };
            if idle.since.elapsed() < self.config.idle_timeout && idle.conn.is_alive() {
                return Ok(self.lease(idle.conn, permit));
            }
        }
        // Idle connections of other keys hold no permit, but each is a
        // server connection: keep their number within the pool size.
        let stale = {
            let mut idle = self.lock_idle();
            let busy = self.config.size - self.permits.available_permits();
            (busy + idle.len() > self.config.size && !idle.is_empty()).then(|| idle.remove(0))
        };
        if let Some(s) = stale {
            s.conn.quit().await;
        }
        let conn = BackendConn::connect(&self.backend, key).await?;
        *self.info.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.info.clone());
        Ok(self.lease(conn, permit))
    }

    fn lease(self: &Arc<Self>, conn: BackendConn, permit: OwnedSemaphorePermit) -> Lease {
        Lease {
            conn,
            _permit: permit,
            pool: self.clone(),
        }
    }
}

/// A server connection lent to one session.
#[derive(Debug)]
pub struct Lease {
    conn: BackendConn,
    _permit: OwnedSemaphorePermit,
    pool: Arc<Pool>,
}

impl Lease {
    /// The connection.
    pub fn conn(&mut self) -> &mut BackendConn {
        &mut self.conn
    }

    /// The pool it came from.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Resets the connection and returns it to the pool; closes it if the
    /// reset fails.
    pub async fn release(mut self) {
        let timeout = self.pool.config.reset_timeout;
        let db = self.pool.backend.database.clone();
        match tokio::time::timeout(timeout, self.conn.reset(&db)).await {
            Ok(Ok(())) => {
                let Lease { conn, pool, .. } = self;
                pool.lock_idle().push(Idle {
                    conn,
                    since: Instant::now(),
                });
            }
            Ok(Err(e)) => {
                tracing::warn!(target_name = %self.pool.backend.target, error = %e, "server connection dropped: reset failed")
            }
            Err(_) => {
                tracing::warn!(target_name = %self.pool.backend.target, "server connection dropped: reset timed out")
            }
        }
    }
}
