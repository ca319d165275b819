//! The sessions open right now, across listeners: what an operator lists
//! (`GET /api/sessions/live`, `sqlgate sessions live`) and ends. Ending a
//! session fires its own token, a child of the gateway's shutdown token:
//! the relay ends it at its next idle point, exactly as a shutdown does
//! (a statement running completes first; nothing is cut mid-result). It
//! must never hold anything a session needs to run: registering and
//! dropping are a map insert and remove.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

/// One open session, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The gateway's session id (unique per listener protocol).
    pub id: u64,
    /// `postgres` or `mysql`.
    pub protocol: &'static str,
    /// The gateway user.
    pub user: String,
    /// The target.
    pub target: String,
    /// The client's address.
    pub client: String,
    /// When it started, in seconds since the Unix epoch.
    pub started: u64,
}

/// Open sessions by protocol and id, with their end tokens.
type Open = BTreeMap<(&'static str, u64), (LiveSession, CancellationToken)>;

/// The registry of open sessions.
#[derive(Debug, Default)]
pub struct LiveSessions {
    open: Mutex<Open>,
}

/// A registered session: removed from the registry when dropped.
#[derive(Debug)]
pub struct LiveGuard<'r> {
    registry: &'r LiveSessions,
    key: (&'static str, u64),
    /// Fires when the session should end (an operator ended it, or the
    /// gateway shuts down).
    pub end: CancellationToken,
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.key);
    }
}

impl LiveSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session; its end token is a child of `shutdown`.
    pub fn register(
        &self,
        mut session: LiveSession,
        shutdown: &CancellationToken,
    ) -> LiveGuard<'_> {
        session.started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = (session.protocol, session.id);
        let end = shutdown.child_token();
        self.lock().insert(key, (session, end.clone()));
        LiveGuard {
            registry: self,
            key,
            end,
        }
    }

    /// The sessions open now, oldest first within each protocol.
    pub fn list(&self) -> Vec<LiveSession> {
        self.lock().values().map(|(s, _)| s.clone()).collect()
    }

    /// Ends a session at its next idle point; `false` if none is open by
    /// that protocol and id.
    pub fn end(&self, protocol: &str, id: u64) -> bool {
        let found = self
            .lock()
            .iter()
            .find(|((p, i), _)| *p == protocol && *i == id)
            .map(|(_, (_, token))| token.clone());
        match found {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: u64) -> LiveSession {
        LiveSession {
            id,
            protocol: "postgres",
            user: "ann".into(),
            target: "app".into(),
            client: "127.0.0.1:5000".into(),
            started: 0,
        }
    }

    #[test]
    fn a_session_is_listed_while_open_and_ended_by_its_token() {
        let live = LiveSessions::default();
        let shutdown = CancellationToken::new();
        let guard = live.register(session(7), &shutdown);
        assert_eq!(live.list().len(), 1);
        assert!(!live.end("mysql", 7), "another protocol's id");
        assert!(live.end("postgres", 7));
        assert!(guard.end.is_cancelled());
        assert!(!shutdown.is_cancelled(), "only that session ends");
        drop(guard);
        assert!(live.list().is_empty());
        assert!(!live.end("postgres", 7));
    }

    #[test]
    fn shutdown_ends_every_session() {
        let live = LiveSessions::default();
        let shutdown = CancellationToken::new();
        let a = live.register(session(1), &shutdown);
        let b = live.register(session(2), &shutdown);
        shutdown.cancel();
        assert!(a.end.is_cancelled() && b.end.is_cancelled());
    }
}
