//! The texts of a session's prepared statements, by the name (PostgreSQL)
//! or id (MySQL) the server knows them by, so that each execution is
//! recorded with the statement it ran. A PostgreSQL name takes its text
//! only once the server confirms the Parse (ParseComplete, in order);
//! a Parse the server refused or skipped leaves the name as it was.
//!
//! An execution (a Bind) sent while preparations are unanswered — a
//! client that pipelines — is recorded once the server has answered
//! them, with the text its name then has.
//!
//! It must never attribute an execution to a text the server did not
//! prepare under that name: unconfirmed preparations are dropped at the
//! next ReadyForQuery.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

/// Prepared statements remembered, at most (past it, executions of the
/// ones forgotten are recorded without their text).
const MAX_PREPARED: usize = 4_096;

/// What an execution of a prepared statement is recorded with.
#[derive(Debug)]
pub(super) struct Prepared {
    pub text: String,
    pub fingerprint: String,
    pub tags: Vec<String>,
    pub masked: bool,
    /// It may carry a credential: its parameters are not recorded.
    pub credential: bool,
}

#[derive(Debug, Default)]
struct Texts {
    /// Preparations sent and not yet answered, oldest first (as many as
    /// the relay lets a client queue), each with the exchanges the client
    /// had closed before it (its exchange ends at ReadyForQuery number
    /// `epoch + 1`).
    awaiting: VecDeque<(u64, u64, Vec<u8>, Arc<Prepared>)>,
    by_name: HashMap<Vec<u8>, Arc<Prepared>>,
    /// Exchanges the client closed (Sync, Query, FunctionCall).
    closed: u64,
    /// ReadyForQuery messages the server sent.
    readies: u64,
    /// Preparations sent (numbers the awaiting ones).
    sent: u64,
    /// Executions sent after the preparation numbered first here: recorded
    /// once it (and every one before it) is answered.
    deferred: VecDeque<(u64, Vec<u8>, Parameters)>,
}

/// Bound parameter values as a relay read them.
pub(super) type Parameters = Option<Vec<Option<String>>>;

/// Records an execution: the statement's name, its text if known, its
/// parameters.
pub(super) type Emit = Arc<dyn Fn(&[u8], Option<&Prepared>, Parameters) + Send + Sync>;

/// A session's prepared statements, shared by its judge (which sees them
/// sent) and its relay's outcome sink (which sees the server answer).
#[derive(Clone, Default)]
pub(super) struct PreparedTexts {
    texts: Arc<Mutex<Texts>>,
    emit: Option<Emit>,
}

impl std::fmt::Debug for PreparedTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTexts").finish_non_exhaustive()
    }
}

impl PreparedTexts {
    /// Texts whose executions `emit` records.
    pub fn new(emit: Emit) -> Self {
        PreparedTexts {
            texts: Arc::default(),
            emit: Some(emit),
        }
    }

    fn texts(&self) -> std::sync::MutexGuard<'_, Texts> {
        self.texts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An execution of statement `name`: its text (if known) when it can
    /// be recorded now, or `Err` when it waits for the preparations sent
    /// before it to be answered (then recorded by the emitter).
    pub fn executed(
        &self,
        name: &[u8],
        parameters: Parameters,
    ) -> Result<(Option<Arc<Prepared>>, Parameters), ()> {
        let mut t = self.texts();
        if let Some((seq, ..)) = t.awaiting.back() {
            let seq = *seq;
            t.deferred.push_back((seq, name.to_vec(), parameters));
            return Err(());
        }
        Ok((t.by_name.get(name).cloned(), parameters))
    }

    /// Records the deferred executions whose preparations are all
    /// answered (`all`: every one, as things stand: the session ended).
    fn release(&self, all: bool) {
        let mut due = Vec::new();
        {
            let mut t = self.texts();
            let oldest = t.awaiting.front().map(|(seq, ..)| *seq);
            while let Some((after, ..)) = t.deferred.front() {
                if !all && oldest.is_some_and(|o| o <= *after) {
                    break;
                }
                let (_, name, parameters) = t.deferred.pop_front().expect("checked");
                let p = t.by_name.get(&name).cloned();
                due.push((name, p, parameters));
            }
        }
        if let Some(emit) = &self.emit {
            for (name, p, parameters) in due {
                emit(&name, p.as_deref(), parameters);
            }
        }
    }

    /// The session ended: executions still waiting are recorded with what
    /// is known.
    pub fn ended(&self) {
        self.release(true);
    }

    /// `p` was sent to be prepared as `name`; `confirmed`: the server has
    /// answered already (MySQL's prepare OK).
    pub fn sent(&self, name: &[u8], p: Arc<Prepared>, confirmed: bool) {
        let mut t = self.texts();
        if confirmed {
            t.insert(name.to_vec(), p);
        } else {
            let (epoch, seq) = (t.closed, t.sent);
            t.sent += 1;
            t.awaiting.push_back((seq, epoch, name.to_vec(), p));
        }
    }

    /// The client closed an exchange (a message the server answers with
    /// ReadyForQuery).
    pub fn closed(&self) {
        self.texts().closed += 1;
    }

    /// The server confirmed the oldest preparation it had not answered.
    pub fn confirmed(&self) {
        {
            let mut t = self.texts();
            if let Some((_, _, name, p)) = t.awaiting.pop_front() {
                t.insert(name, p);
            }
        }
        self.release(false);
    }

    /// The server ended an exchange: what it did not confirm in it never
    /// happened.
    pub fn ready(&self) {
        {
            let mut t = self.texts();
            t.readies += 1;
            let readies = t.readies;
            while t.awaiting.front().is_some_and(|(_, e, ..)| *e < readies) {
                t.awaiting.pop_front();
            }
        }
        self.release(false);
    }

    /// The text prepared as `name`.
    #[cfg(test)]
    pub fn get(&self, name: &[u8]) -> Option<Arc<Prepared>> {
        self.texts().by_name.get(name).cloned()
    }
}

impl Texts {
    fn insert(&mut self, name: Vec<u8>, p: Arc<Prepared>) {
        if self.by_name.len() >= MAX_PREPARED && !self.by_name.contains_key(&name) {
            self.by_name.clear();
        }
        self.by_name.insert(name, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Arc<Prepared> {
        Arc::new(Prepared {
            text: t.to_owned(),
            fingerprint: String::new(),
            tags: Vec::new(),
            masked: false,
            credential: false,
        })
    }

    #[test]
    fn a_name_takes_a_text_only_when_the_server_confirms_it() {
        let p = PreparedTexts::default();
        p.sent(b"s1", text("DELETE FROM t WHERE id = $1"), false);
        p.closed();
        p.confirmed();
        p.ready();
        // The server refuses the second Parse of s1 (it exists): no
        // ParseComplete, then ReadyForQuery.
        p.sent(b"s1", text("SELECT $1"), false);
        p.closed();
        p.ready();
        assert_eq!(p.get(b"s1").unwrap().text, "DELETE FROM t WHERE id = $1");
        // Pipelined: a Parse sent before the last exchange's
        // ReadyForQuery arrived is not dropped by it.
        p.closed();
        p.sent(b"a", text("SELECT 1"), false);
        p.sent(b"b", text("SELECT 2"), false);
        p.closed();
        p.ready();
        p.confirmed();
        p.confirmed();
        p.ready();
        assert_eq!(p.get(b"a").unwrap().text, "SELECT 1");
        assert_eq!(p.get(b"b").unwrap().text, "SELECT 2");
        p.sent(b"7", text("SELECT ?"), true);
        assert_eq!(p.get(b"7").unwrap().text, "SELECT ?");
    }

    #[test]
    fn a_pipelined_execution_waits_for_the_preparations_before_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let p = PreparedTexts::new(Arc::new(move |name, prepared, _| {
            log.lock().unwrap().push((
                String::from_utf8_lossy(name).into_owned(),
                prepared.map(|p| p.text.clone()),
            ));
        }));
        p.sent(b"s1", text("first"), false);
        p.closed();
        p.sent(b"s1", text("second"), false);
        p.closed();
        assert!(p.executed(b"s1", None).is_err(), "waits: unanswered");
        assert!(seen.lock().unwrap().is_empty());
        p.confirmed();
        p.ready();
        assert!(seen.lock().unwrap().is_empty(), "the second is unanswered");
        p.ready();
        assert_eq!(
            *seen.lock().unwrap(),
            [("s1".to_owned(), Some("first".to_owned()))]
        );
    }
}
