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

    /// The text prepared last went to the server as `name` (replacing
    /// whatever had that name).
    pub fn prepared_as(&mut self, name: &[u8]) {
        match self.last.take() {
            Some(t) => {
                self.by_name.insert(name.to_vec(), t);
            }
            None => {
                self.by_name.remove(name);
            }
        }
    }

    /// The review of prepared statement `name`, if one applies.
    pub fn get(&self, name: &[u8]) -> Option<&Template> {
        self.by_name.get(name)
    }
}
