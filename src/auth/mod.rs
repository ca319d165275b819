//! Gateway users: who may log in, with what secret, to which targets.
//! Credentials of the servers behind the gateway are never here: those
//! belong to targets and stay inside the pools.

use std::collections::HashMap;

use crate::config::User;

/// The users of one configuration snapshot, by name.
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, User>,
}

impl Users {
    /// Indexes the configured users.
    pub fn new(users: &[User]) -> Self {
        Users {
            by_name: users.iter().map(|u| (u.name.clone(), u.clone())).collect(),
        }
    }

    /// A user by login name.
    pub fn get(&self, name: &str) -> Option<&User> {
        self.by_name.get(name)
    }
}
