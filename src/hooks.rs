//! The engine's side of the protocol crates' hook traits: user lookup,
//! routing a session to a target, and the statement hook point where
//! every statement text is parsed and logged (policy plugs in here).

use std::collections::HashMap;
use std::sync::Arc;

use sqlgate_postgres::messages::error_response::{ClientError, SqlState};
use sqlgate_postgres::{Hooks, Pool, Route, SessionInfo, StatementOrigin, UserAuth};

use crate::auth::Users;
use crate::policy::parse::{parse, SqlDialect};

/// Log target of the per-statement lines, so that they can be switched on
/// alone: `RUST_LOG=info,sqlgate::statement=debug`.
pub const STATEMENT_LOG: &str = "sqlgate::statement";

/// Hooks of the PostgreSQL listener.
#[derive(Debug)]
pub struct PgHooks {
    users: Users,
    pools: HashMap<String, Arc<Pool>>,
}

impl PgHooks {
    /// Hooks over these users and the pools of the PostgreSQL targets.
    pub fn new(users: Users, pools: HashMap<String, Arc<Pool>>) -> Self {
        PgHooks { users, pools }
    }

    fn targets_of(&self, user: &str) -> Vec<&str> {
        let Some(u) = self.users.get(user) else {
            return Vec::new();
        };
        let mut names: Vec<&str> = self
            .pools
            .keys()
            .map(String::as_str)
            .filter(|t| u.may_use(t))
            .collect();
        names.sort_unstable();
        names
    }
}

impl Hooks for PgHooks {
    fn user(&self, name: &str) -> Option<UserAuth> {
        self.users.get(name).map(|u| UserAuth {
            method: u.auth,
            secret: u.secret.clone(),
        })
    }

    fn route(&self, user: &str, database: &str) -> Result<Route, ClientError> {
        let allowed = self.targets_of(user);
        let choices = if allowed.is_empty() {
            "none".to_owned()
        } else {
            allowed.join(", ")
        };
        let Some(pool) = self.pools.get(database) else {
            return Err(ClientError::fatal(
                SqlState::INVALID_CATALOG_NAME,
                format!("target \"{database}\" does not exist"),
            )
            .with_hint(format!(
                "connect with the name of a target as database; yours: {choices}"
            )));
        };
        if !allowed.contains(&database) {
            return Err(ClientError::fatal(
                SqlState::INSUFFICIENT_PRIVILEGE,
                format!("user \"{user}\" may not use target \"{database}\""),
            )
            .with_hint(format!("targets of \"{user}\": {choices}")));
        }
        Ok(Route {
            target: database.to_owned(),
            pool: pool.clone(),
        })
    }

    fn statement(&self, session: &SessionInfo, origin: StatementOrigin, sql: &[u8]) {
        let parsed = parse(SqlDialect::Postgres, sql);
        if !tracing::enabled!(target: STATEMENT_LOG, tracing::Level::DEBUG) {
            return;
        }
        match parsed {
            Ok(statements) => {
                for statement in &statements {
                    tracing::debug!(
                        target: STATEMENT_LOG,
                        session = %session.id,
                        user = %session.user,
                        target_name = %session.target,
                        ?origin,
                        %statement,
                        "statement"
                    );
                }
            }
            Err(error) => tracing::debug!(
                target: STATEMENT_LOG,
                session = %session.id,
                user = %session.user,
                target_name = %session.target,
                ?origin,
                text = %String::from_utf8_lossy(sql),
                %error,
                "unparseable statement"
            ),
        }
    }
}
