//! What a session holds for approval beyond the text in hand: prepared
//! statements a rule reviews, held at each execution (PostgreSQL Bind,
//! MySQL COM_STMT_EXECUTE) with its parameter values, never at prepare
//! time — an approval covers one execution, not every later one.
//!
//! This module must never forget a reviewed prepared statement while its
//! name can still be executed: past [`MAX_PREPARED_REVIEWS`] a new one is
//! refused instead.

use std::collections::HashMap;

use crate::approvals::{HeldStatement, ReviewSettings};

/// Reviewed prepared statements one session may keep.
pub(super) const MAX_PREPARED_REVIEWS: usize = 1024;

/// A reviewed text, as a request would show it.
#[derive(Debug, Clone)]
pub(super) struct Template {
    pub statements: Vec<HeldStatement>,
    pub rule: String,
    pub review: ReviewSettings,
    /// Its parameters may carry a secret: approvers do not see them.
    pub secret_parameters: bool,
    /// `retry` mode: its fingerprints and literal values (what a retry
    /// must match).
    pub key: String,
    /// Each statement's text as sent, where its reach is estimated (an
    /// UPDATE or DELETE): asked of the server, never shown.
    pub estimable: Vec<Option<String>>,
    /// Each DDL statement's lock, table and whether it rewrites the
    /// table (PostgreSQL).
    pub ddl: Vec<Option<(&'static str, Option<String>, bool)>>,
}

/// A session's reviewed prepared statements, by the server's name (a
/// PostgreSQL statement name, a MySQL statement id).
#[derive(Debug, Default)]
pub(super) struct PreparedReviews {
    /// The text being prepared now, until the relay names it.
    last: Option<Template>,
    by_name: HashMap<Vec<u8>, Template>,
}

impl PreparedReviews {
    /// The text judged last prepares `t` (`None`: nothing reviewed).
    pub fn parsed(&mut self, t: Option<Template>) {
        self.last = t;
    }

    /// Whether another reviewed statement would pass the bound.
    pub fn full(&self) -> bool {
        self.by_name.len() >= MAX_PREPARED_REVIEWS
    }

    /// The text prepared last went to the server as `name`; `confirmed`:
    /// the server has prepared it. A review is never lifted on the
    /// client's word: a Parse of a reviewed name that the server refuses
    /// (the name exists) must not leave the reviewed statement unheld. Only
    /// the unnamed statement (which the server drops before it parses
    /// another) or a confirmed preparation replaces one.
    pub fn prepared_as(&mut self, name: &[u8], confirmed: bool) {
        match self.last.take() {
            Some(t) => self.review(name, t),
            None if name.is_empty() || confirmed => {
                self.by_name.remove(name);
            }
            None => {}
        }
    }

    /// Executions of `name` are held as `t` (SQL `PREPARE name` too: the
    /// protocol and SQL share one namespace of statements).
    pub fn review(&mut self, name: &[u8], t: Template) {
        self.by_name.insert(name.to_vec(), t);
    }

    /// The review of prepared statement `name`, if one applies.
    pub fn get(&self, name: &[u8]) -> Option<&Template> {
        self.by_name.get(name)
    }

    /// The review of a statement SQL `EXECUTE` names: its name as the
    /// parser read it may differ in case from the server's, so any name
    /// equal but for case counts (fail-closed).
    pub fn get_sql(&self, name: &str) -> Option<&Template> {
        self.by_name.get(name.as_bytes()).or_else(|| {
            self.by_name
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, t)| t)
        })
    }

    /// Whether any prepared statement of the session is reviewed.
    pub fn any(&self) -> bool {
        !self.by_name.is_empty()
    }
}
