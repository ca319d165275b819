//! `KILL [QUERY|CONNECTION] <id>` between sessions of one gateway
//! identity. A client may name a session by the connection id of its
//! handshake (the gateway's: what the mariadb CLI's Ctrl-C uses) or by
//! its server thread id (what `CONNECTION_ID()` and `SHOW PROCESSLIST`
//! say); either is rewritten to the server thread of that session. The
//! gateway's ids start at 2^30, far above any server's thread ids, so the
//! two never name different sessions.
//!
//! A KILL of an id the gateway does not know, or of another identity's
//! session, never reaches the server: it could name another tenant's
//! thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::ConnKey;
use crate::pool::Pool;

/// The first connection id the gateway gives (server thread ids stay far
/// below).
pub const FIRST_ID: u32 = 1 << 30;

struct Entry {
    pool: Arc<Pool>,
    thread: u32,
    user: String,
    key: ConnKey,
    held: Arc<tokio::sync::Notify>,
}

/// Where a KILL lands: a session's server thread, on its target.
#[derive(Clone)]
pub struct Target {
    /// The target's pool (its server).
    pub pool: Arc<Pool>,
    /// The server thread.
    pub thread: u32,
    /// How connections to it are made (for a KILL sent from elsewhere).
    pub key: ConnKey,
    /// Woken by the KILL: the session withdraws a statement it holds
    /// (one held for approval has not reached the server).
    pub held: Arc<tokio::sync::Notify>,
}

/// The server thread behind each live session, and whose it is.
#[derive(Default)]
pub struct KillRegistry {
    sessions: Mutex<HashMap<u32, Entry>>,
}

impl std::fmt::Debug for KillRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KillRegistry")
    }
}

impl KillRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Entry>> {
        // insert/remove only: a poisoned map is still consistent.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers (or, after COM_CHANGE_USER, updates) a session: its
    /// server thread and its gateway user.
    pub fn register(
        &self,
        id: u32,
        pool: Arc<Pool>,
        thread: u32,
        user: &str,
        key: ConnKey,
        held: Arc<tokio::sync::Notify>,
    ) {
        self.lock().insert(
            id,
            Entry {
                pool,
                thread,
                user: user.to_owned(),
                key,
                held,
            },
        );
    }

    /// Whether a live session has gateway id `id`.
    pub fn in_use(&self, id: u32) -> bool {
        self.lock().contains_key(&id)
    }

    /// Forgets a session.
    pub fn unregister(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// Where a KILL from `user`, in a session on `pool`'s target, lands
    /// for `id`: a session of the same user named by its gateway
    /// connection id (on any target: those ids are the gateway's own), or
    /// by its server thread id on the same target (thread ids are the
    /// server's).
    pub fn target(&self, id: u64, pool: &Arc<Pool>, user: &str) -> Option<Target> {
        let id = u32::try_from(id).ok()?;
        let sessions = self.lock();
        let target = |e: &Entry| Target {
            pool: e.pool.clone(),
            thread: e.thread,
            key: e.key,
            held: e.held.clone(),
        };
        if let Some(e) = sessions.get(&id).filter(|e| e.user == user) {
            return Some(target(e));
        }
        sessions
            .values()
            .find(|e| e.user == user && Arc::ptr_eq(&e.pool, pool) && e.thread == id)
            .map(target)
    }
}

/// A parsed KILL statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    /// `KILL QUERY` (else the whole connection).
    pub query_only: bool,
    /// `HARD` / `SOFT` as written (MariaDB), if any.
    pub modifier: Option<String>,
    /// The id.
    pub id: u64,
}

impl Kill {
    /// The statement for the server thread `thread`.
    pub fn for_thread(&self, thread: u32) -> String {
        let modifier = self
            .modifier
            .as_deref()
            .map(|m| format!("{m} "))
            .unwrap_or_default();
        let what = if self.query_only {
            "QUERY"
        } else {
            "CONNECTION"
        };
        format!("KILL {modifier}{what} {thread}")
    }
}

/// Recognizes `KILL [HARD|SOFT] [QUERY|CONNECTION] <number>` (any case,
/// surrounding whitespace, one trailing semicolon). `Some(Err(()))` for
/// other KILL forms (`KILL QUERY ID`, `KILL USER`), which the gateway
/// refuses; `None` for anything that is not a KILL.
pub fn parse(sql: &[u8]) -> Option<Result<Kill, ()>> {
    // Every query passes here: most are told apart by their first byte,
    // without a UTF-8 check of the whole text. Text trimming removes
    // ASCII whitespace and non-ASCII whitespace (whose bytes are all
    // past 0x7F), so an ASCII byte other than `k` after the ASCII
    // whitespace starts a first word that is not `KILL`.
    let first = sql
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'));
    if first.is_some_and(|b| b.is_ascii() && !b.eq_ignore_ascii_case(&b'k')) {
        return None;
    }
    let text = std::str::from_utf8(sql).ok()?;
    let text = text.trim().trim_end_matches(';').trim_end();
    let mut words = text.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    let mut modifier = None;
    let mut query_only = false;
    while let Some(word) = words.next() {
        let upper = word.to_ascii_uppercase();
        match upper.as_str() {
            "HARD" | "SOFT" if modifier.is_none() => modifier = Some(upper),
            "QUERY" => query_only = true,
            "CONNECTION" => {}
            _ => {
                // The id ends the statement: anything after it is not a
                // KILL the gateway knows.
                if words.next().is_some() {
                    return Some(Err(()));
                }
                return Some(
                    word.parse()
                        .map(|id| Kill {
                            query_only,
                            modifier,
                            id,
                        })
                        .map_err(|_| ()),
                );
            }
        }
    }
    Some(Err(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_forms() {
        let k = parse(b"  kill query 42 ;").unwrap().unwrap();
        assert_eq!((k.query_only, k.id), (true, 42));
        assert_eq!(k.for_thread(7), "KILL QUERY 7");
        let k = parse(b"KILL HARD CONNECTION 5").unwrap().unwrap();
        assert_eq!(k.for_thread(9), "KILL HARD CONNECTION 9");
        assert!(!parse(b"KILL 3").unwrap().unwrap().query_only);
        assert_eq!(parse(b"KILL QUERY ID 3"), Some(Err(())));
        assert_eq!(parse(b"KILL USER bob"), Some(Err(())));
        assert_eq!(parse(b"SELECT 1"), None);
        // Whitespace the text's trimming removes, ASCII or not.
        assert!(parse(b" \t\x0b\x0c\r\nkill 4").unwrap().is_ok());
        assert!(parse("\u{a0}\u{2003}Kill 4".as_bytes()).unwrap().is_ok());
        assert_eq!(parse(b"  select 1"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"killjoy"), None);
        assert_eq!(parse(b"KILL QUERY 5 DROP TABLE t"), Some(Err(())));
    }
}
