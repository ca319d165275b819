//! Session pooling: per target, at most `size` server connections, each
//! lent to one client session for that session's lifetime.
//!
//! A connection comes back only through [`Lease::release`], which resets it
//! (`DISCARD ALL`); a lease that is dropped instead closes its connection.
//! So a connection in an unknown state is never handed to another client.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::backend::{BackendConfig, BackendConn, BackendError};
use crate::messages::error_response::{ClientError, SqlState};

/// Pool limits for one target.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most server connections open at once.
    pub size: usize,
    /// How long a session waits for a free connection.
    pub acquire_timeout: Duration,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
    /// How long a reset may take before the connection is dropped.
    pub reset_timeout: Duration,
}

/// Why a session got no server connection.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every connection was in use for the whole acquire timeout.
    #[error("all {size} server connections of target \"{target}\" are in use (waited {waited:?})")]
    Exhausted {
        /// The target.
        target: String,
        /// The pool size.
        size: usize,
        /// How long the session waited.
        waited: Duration,
    },
    /// Opening a new connection failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl PoolError {
    /// The FATAL error the client gets.
    pub fn client_error(&self, target: &str) -> ClientError {
        match self {
            PoolError::Exhausted { .. } => {
                ClientError::fatal(SqlState::TOO_MANY_CONNECTIONS, self.to_string())
                    .with_hint("retry later, or raise the target's pool_size")
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
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.backend.target)
            .field("size", &self.config.size)
            .finish()
    }
}

impl Pool {
    /// An empty pool; connections open on demand.
    pub fn new(backend: BackendConfig, config: PoolConfig) -> Arc<Self> {
        Arc::new(Pool {
            permits: Arc::new(Semaphore::new(config.size)),
            idle: Mutex::new(Vec::new()),
            backend,
            config,
        })
    }

    /// The target's connection settings.
    pub fn backend(&self) -> &BackendConfig {
        &self.backend
    }

    /// Connections open and idle right now.
    pub fn idle_count(&self) -> usize {
        self.lock_idle().len()
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // A panic while holding this lock cannot leave the Vec half-updated
        // (push/pop only), so a poisoned lock is safe to use.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lends a connection: an idle one that is still alive, or a new one.
    pub async fn acquire(self: &Arc<Self>) -> Result<Lease, PoolError> {
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
            let candidate = self.lock_idle().pop();
            let Some(mut idle) = candidate else { break };
            if idle.since.elapsed() < self.config.idle_timeout && idle.conn.is_alive() {
                return Ok(self.lease(idle.conn, permit));
            }
            tracing::debug!(target_name = %self.backend.target, "dropping a stale idle server connection");
        }
        let conn = BackendConn::connect(&self.backend).await?;
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

    /// The server's ParameterStatus values on this connection.
    pub fn params(&self) -> &[(String, String)] {
        self.conn.params()
    }

    /// The pool it came from.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Resets the connection and returns it to the pool; drops it if the
    /// reset fails or takes too long.
    pub async fn release(mut self, status: u8, unsynced: bool) {
        let timeout = self.pool.config.reset_timeout;
        match tokio::time::timeout(timeout, self.conn.reset(status, unsynced)).await {
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
