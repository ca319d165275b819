//! Who may log in: gateway users with their secrets, and the identity
//! providers whose tokens are logins (`crate::oidc`). Credentials of the
//! servers behind the gateway are never here: those belong to targets and
//! stay inside the pools.

use std::collections::HashMap;
use std::sync::Arc;

use sqlgate_net::identity::Identity;

use crate::config::User;
use crate::oidc::Providers;

/// The logins of one configuration snapshot.
#[derive(Debug, Default)]
pub struct Users {
    by_name: HashMap<String, (User, Arc<Identity>)>,
    providers: Arc<Providers>,
}

impl Users {
    /// Indexes the configured users (no token logins).
    pub fn new(users: &[User]) -> Self {
        Users {
            by_name: users
                .iter()
                .map(|u| {
                    let identity = Identity::password(
                        &u.name,
                        &u.groups,
                        &u.targets,
                        u.default_target.as_deref(),
                    );
                    (u.name.clone(), (u.clone(), identity))
                })
                .collect(),
            providers: Arc::default(),
        }
    }

    /// With token logins from these providers.
    pub fn with_providers(mut self, providers: Arc<Providers>) -> Self {
        self.providers = providers;
        self
    }

    /// A password user by login name, with the identity they log in as.
    pub fn get(&self, name: &str) -> Option<(&User, &Arc<Identity>)> {
        self.by_name.get(name).map(|(u, i)| (u, i))
    }

    /// The identity providers (`has(name)`: a token login's user name).
    pub fn providers(&self) -> &Arc<Providers> {
        &self.providers
    }
}
