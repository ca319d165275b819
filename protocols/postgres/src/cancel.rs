//! Query cancellation. Clients get a BackendKeyData with the process id of
//! the server connection their session holds (what `pg_backend_pid()`
//! and notifications say) and a secret the gateway makes, never the
//! server's; a CancelRequest carrying that pair is turned into a
//! CancelRequest with the server's key of the connection the session
//! holds right now. Several sessions may present one pid over time (a
//! pooled connection passes on): a cancel reaches only the session whose
//! secret it carries.
//!
//! This module must never forward a cancel whose secret does not match,
//! nor tell the requester whether it did.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use subtle::ConstantTimeEq;

use crate::backend::{cancel, BackendKey};
use crate::pool::Pool;

/// The gateway's id for one client session (in logs; the process id in
/// the BackendKeyData only when the server gave none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub u32);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

struct Entry {
    /// The process id the session's client was given.
    pid: i32,
    secret: [u8; 4],
    pool: Arc<Pool>,
    key: BackendKey,
    /// Woken by a valid cancel: the session withdraws a statement it
    /// holds (one held for approval has not reached the server).
    held: Arc<tokio::sync::Notify>,
}

/// Live sessions' cancel keys, by session.
#[derive(Default)]
pub struct CancelRegistry {
    sessions: Mutex<HashMap<u32, Entry>>,
}

impl std::fmt::Debug for CancelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CancelRegistry")
    }
}

impl CancelRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        // insert/remove only: a poisoned map is still consistent.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session's key (the pid and secret its client was
    /// given) and the server connection it holds.
    pub fn register(
        &self,
        id: SessionId,
        pid: i32,
        secret: [u8; 4],
        pool: Arc<Pool>,
        key: BackendKey,
        held: Arc<tokio::sync::Notify>,
    ) {
        self.lock().insert(
            id.0,
            Entry {
                pid,
                secret,
                pool,
                key,
                held,
            },
        );
    }

    /// Forgets a session (when it ends).
    pub fn unregister(&self, id: SessionId) {
        self.lock().remove(&id.0);
    }

    /// Forwards a client's CancelRequest if its key is valid. Like
    /// PostgreSQL, the requester learns nothing either way.
    pub async fn cancel(&self, pid: i32, secret: &[u8]) {
        let found = {
            let sessions = self.lock();
            // Every session presenting this pid is compared, in constant
            // time per secret (a cancel is rare; sessions are thousands).
            sessions
                .values()
                .filter(|e| e.pid == pid)
                .find(|e| bool::from(e.secret.ct_eq(secret)))
                .map(|e| (e.pool.clone(), e.key.clone(), e.held.clone()))
        };
        match found {
            Some((pool, key, held)) => {
                // Only a wait under way now is withdrawn (no permit kept).
                held.notify_waiters();
                tracing::info!(session = pid, target_name = %pool.connector().backend().target, "forwarding cancel request");
                if let Err(e) = cancel(pool.connector().backend(), &key).await {
                    tracing::warn!(session = pid, error = %e, "cancel request failed");
                }
            }
            None => tracing::warn!(session = pid, "cancel request with an unknown key ignored"),
        }
    }
}
