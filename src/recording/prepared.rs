//! The texts of a session's prepared statements, by the name (PostgreSQL)
//! or id (MySQL) the server knows them by, so that each execution is
//! recorded with the statement it ran. A PostgreSQL name takes its text
//! only when the relay's model of the server reports the Parse answered
//! with ParseComplete (a failed or skipped Parse leaves the name as it
//! was; one of the unnamed statement drops it, as the server does).
//!
//! An execution sent while Parses of its name are unanswered (a client
//! that pipelines) may run either text: it is recorded with the newest,
//! marked unconfirmed, and it is durable before it runs if any of them
//! could change anything. It must never let an execution whose text is
//! unknown run without a durable record.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Prepared statements remembered, at most (past it, the oldest-named
/// are forgotten one at a time; an execution of one is then recorded as
/// of an unknown text, durably).
const MAX_PREPARED: usize = 4_096;

/// What an execution of a prepared statement is recorded with.
#[derive(Debug)]
pub(super) struct Prepared {
    pub text: String,
    pub fingerprint: String,
    pub tags: Vec<String>,
    pub rule: Option<String>,
    pub masked_columns: Vec<String>,
    pub masked: bool,
    /// It may carry or bind a credential, key or token: its parameters
    /// are not recorded.
    pub credential: bool,
    /// Running it could change anything (a tag outside the harmless
    /// roots): decided once, read at every execution.
    pub changes: bool,
    /// The number of the session's definition its confirmed executions
    /// reference, once found ([`NOT_DEFINED`] until then): its fields
    /// never change, and a session's definitions are never taken back
    /// once recorded.
    pub defined: std::sync::atomic::AtomicU32,
}

/// [`Prepared::defined`] before its definition is found.
pub(super) const NOT_DEFINED: u32 = u32::MAX;

/// Whether a statement of these tags could change anything (a tag
/// outside the harmless roots).
pub(super) fn changes_anything<'t>(tags: impl IntoIterator<Item = &'t str>) -> bool {
    tags.into_iter()
        .any(|t| !super::HARMLESS.contains(&t.split('.').next().unwrap_or_default()))
}

/// What an execution of a name may run.
#[derive(Debug)]
pub(super) struct Candidates {
    /// The text to record: the newest Parse sent under the name, else
    /// the one the server prepared (`None`: unknown).
    pub newest: Option<Arc<Prepared>>,
    /// The newest is not confirmed yet (a Parse of it is unanswered).
    pub unconfirmed: bool,
    /// The execution must be durable before it runs: some text it may
    /// run could change something, or its text is unknown.
    pub durable: bool,
}

#[derive(Debug, Default)]
struct Texts {
    /// Parses forwarded and not yet answered, oldest first (as many as
    /// the relay lets a client queue).
    awaiting: VecDeque<(Vec<u8>, Arc<Prepared>)>,
    /// (foldhash, seeded per session: names are the client's to choose.)
    by_name: HashMap<Vec<u8>, Arc<Prepared>, foldhash::fast::RandomState>,
    /// Names in the order they were prepared (for forgetting the oldest).
    order: VecDeque<Vec<u8>>,
}

/// A session's prepared statements, shared by its judge (which sees them
/// sent) and its relay's outcome sink (which sees the server answer).
#[derive(Debug, Default, Clone)]
pub(super) struct PreparedTexts {
    shared: Arc<Shared>,
    /// The last execution's confirmed text, for as long as nothing
    /// changed: a client that executes the same statement again (every
    /// prepared read) finds it without the lock and the name's lookup.
    last: Option<Last>,
}

#[derive(Debug, Default)]
struct Shared {
    texts: Mutex<Texts>,
    /// Changes made to `texts` (counted under its lock).
    changes: AtomicU64,
}

#[derive(Debug, Clone)]
struct Last {
    name: Vec<u8>,
    /// `Shared::changes` when it was looked up.
    changes: u64,
    prepared: Arc<Prepared>,
}

impl PreparedTexts {
    fn texts(&self) -> std::sync::MutexGuard<'_, Texts> {
        self.shared
            .texts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The texts, to change them: what was looked up before no longer
    /// stands.
    fn change(&self) -> std::sync::MutexGuard<'_, Texts> {
        let t = self.texts();
        self.shared.changes.fetch_add(1, Ordering::AcqRel);
        t
    }

    /// `p` was sent to be prepared as `name`; `confirmed`: the server has
    /// answered already (MySQL's prepare OK).
    pub fn sent(&self, name: &[u8], p: Arc<Prepared>, confirmed: bool) {
        let mut t = self.change();
        if confirmed {
            t.insert(name.to_vec(), p);
        } else {
            t.awaiting.push_back((name.to_vec(), p));
        }
    }

    /// The server answered the oldest Parse forwarded: prepared (`ok`)
    /// under `name`, or not.
    pub fn answered(&self, name: &[u8], ok: bool) {
        let mut t = self.change();
        match t.awaiting.pop_front() {
            Some((sent, p)) if sent == name => {
                if ok {
                    t.insert(sent, p);
                } else if name.is_empty() {
                    // The server drops the unnamed statement before it
                    // parses a new one.
                    t.by_name.remove(name);
                }
            }
            // The two sides disagree: nothing is known any more (every
            // execution is then recorded durably, as of unknown text).
            _ => {
                tracing::error!("recording: the Parses answered do not match those sent; prepared statements' texts are forgotten");
                *t = Texts::default();
            }
        }
    }

    /// The server dropped the unnamed statement.
    pub fn unnamed_dropped(&self) {
        self.change().by_name.remove(&b""[..]);
    }

    /// What an execution of `name` may run.
    pub fn candidates(&mut self, name: &[u8]) -> Candidates {
        let changes = self.shared.changes.load(Ordering::Acquire);
        if let Some(last) = self
            .last
            .as_ref()
            .filter(|l| l.changes == changes && l.name == name)
        {
            return Candidates {
                newest: Some(last.prepared.clone()),
                unconfirmed: false,
                durable: last.prepared.changes,
            };
        }
        let t = self.texts();
        // Read under the lock: no change is made between the two.
        let changes = self.shared.changes.load(Ordering::Acquire);
        let prepared = t.by_name.get(name);
        // The Parses of `name` still unanswered, walked without a list
        // (most executions have none).
        let mut pending_newest = None;
        let mut pending_changes = false;
        for (_, p) in t.awaiting.iter().filter(|(n, _)| n == name) {
            pending_changes |= p.changes;
            pending_newest = Some(p);
        }
        let unconfirmed = pending_newest.is_some();
        let newest = pending_newest.or(prepared).cloned();
        let durable = newest.is_none() || prepared.is_some_and(|p| p.changes) || pending_changes;
        drop(t);
        self.last = match (&newest, unconfirmed) {
            (Some(p), false) => Some(Last {
                name: name.to_vec(),
                changes,
                prepared: p.clone(),
            }),
            _ => None,
        };
        Candidates {
            newest,
            unconfirmed,
            durable,
        }
    }

    /// The text prepared as `name`.
    #[cfg(test)]
    pub fn get(&self, name: &[u8]) -> Option<Arc<Prepared>> {
        self.texts().by_name.get(name).cloned()
    }
}

impl Texts {
    fn insert(&mut self, name: Vec<u8>, p: Arc<Prepared>) {
        if !self.by_name.contains_key(&name) {
            while self.by_name.len() >= MAX_PREPARED {
                match self.order.pop_front() {
                    Some(old) => {
                        self.by_name.remove(&old);
                    }
                    None => break,
                }
            }
            self.order.push_back(name.clone());
        }
        self.by_name.insert(name, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str, tag: &str) -> Arc<Prepared> {
        Arc::new(Prepared {
            text: t.to_owned(),
            fingerprint: String::new(),
            tags: vec![tag.to_owned()],
            rule: None,
            masked_columns: Vec::new(),
            masked: false,
            credential: false,
            changes: changes_anything([tag]),
            defined: NOT_DEFINED.into(),
        })
    }

    #[test]
    fn a_name_takes_a_text_only_when_the_server_prepared_it() {
        let mut p = PreparedTexts::default();
        p.sent(
            b"s1",
            text("DELETE FROM t WHERE id = $1", "write.delete"),
            false,
        );
        p.answered(b"s1", true);
        // The server refuses a second Parse of s1 (it exists).
        p.sent(b"s1", text("SELECT $1", "read"), false);
        let c = p.candidates(b"s1");
        assert!(c.unconfirmed && c.durable, "either may run: durable");
        p.answered(b"s1", false);
        assert_eq!(p.get(b"s1").unwrap().text, "DELETE FROM t WHERE id = $1");
        assert!(p.candidates(b"s1").durable);
        // A read, confirmed: not durable.
        p.sent(b"r", text("SELECT 1", "read"), false);
        p.answered(b"r", true);
        let c = p.candidates(b"r");
        assert!(!c.durable && !c.unconfirmed);
        // Unknown: durable.
        assert!(p.candidates(b"nope").durable);
        // A failed Parse of the unnamed statement drops it.
        p.sent(b"", text("SELECT 2", "read"), false);
        p.answered(b"", true);
        p.sent(b"", text("SELEC", "read"), false);
        p.answered(b"", false);
        assert!(p.candidates(b"").durable, "unknown again");
        // A mismatch forgets everything (fail-closed).
        p.sent(b"a", text("SELECT 3", "read"), false);
        p.answered(b"b", true);
        assert!(p.candidates(b"r").durable);
        // MySQL: confirmed at once.
        p.sent(b"7", text("SELECT ?", "read"), true);
        assert!(!p.candidates(b"7").durable);
    }

    #[test]
    fn an_execution_finds_what_the_last_change_left() {
        let mut p = PreparedTexts::default();
        // The relay's outcome sink changes the texts through its copy.
        let sink = p.clone();
        p.sent(b"s", text("SELECT 1", "read"), true);
        for _ in 0..2 {
            let c = p.candidates(b"s");
            assert_eq!(c.newest.unwrap().text, "SELECT 1");
            assert!(!c.durable && !c.unconfirmed);
        }
        sink.sent(b"s", text("DELETE FROM t", "write.delete"), false);
        let c = p.candidates(b"s");
        assert!(c.unconfirmed && c.durable, "a Parse of it is unanswered");
        sink.answered(b"s", true);
        let c = p.candidates(b"s");
        assert_eq!(c.newest.unwrap().text, "DELETE FROM t");
        assert!(c.durable && !c.unconfirmed);
        assert_eq!(p.candidates(b"s").newest.unwrap().text, "DELETE FROM t");
        // Another name is looked up, not taken for the last one.
        assert!(p.candidates(b"t").newest.is_none());
        // The unnamed statement, dropped by the server.
        p.sent(b"", text("SELECT 2", "read"), true);
        assert!(!p.candidates(b"").durable);
        sink.unnamed_dropped();
        assert!(p.candidates(b"").durable, "its text is unknown now");
    }

    #[test]
    fn the_oldest_names_are_forgotten_one_at_a_time() {
        let p = PreparedTexts::default();
        for i in 0..=MAX_PREPARED {
            p.sent(i.to_string().as_bytes(), text("SELECT 1", "read"), true);
        }
        assert!(p.get(b"0").is_none());
        assert!(p.get(b"1").is_some());
    }
}
