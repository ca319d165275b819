//! The engine's side of the protocol crates' hook traits: user lookup,
//! routing a session to a target, and the statement hook point where
//! every statement text is parsed and logged (policy plugs in here).

use std::collections::HashMap;
use std::sync::Arc;

use sqlgate_postgres::messages::error_response::{ClientError, SqlState};
use sqlgate_postgres::{Hooks, Pool, Route, SessionInfo, StatementOrigin, UserAuth};

use sqlgate_mysql::messages::err::ClientError as MyError;

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
        log_statement(
            SqlDialect::Postgres,
            session.id.0,
            &session.user,
            &session.target,
            origin,
            sql,
        );
    }
}

/// The statement hook point of both protocols: parse, then log each
/// statement with its session (policy will judge here).
fn log_statement(
    dialect: SqlDialect,
    session: u32,
    user: &str,
    target: &str,
    origin: impl std::fmt::Debug,
    sql: &[u8],
) {
    let parsed = parse(dialect, sql);
    if !tracing::enabled!(target: STATEMENT_LOG, tracing::Level::DEBUG) {
        return;
    }
    match parsed {
        Ok(statements) => {
            for statement in &statements {
                tracing::debug!(
                    target: STATEMENT_LOG,
                    session,
                    %user,
                    target_name = %target,
                    ?origin,
                    %statement,
                    "statement"
                );
            }
        }
        Err(error) => tracing::debug!(
            target: STATEMENT_LOG,
            session,
            %user,
            target_name = %target,
            ?origin,
            text = %String::from_utf8_lossy(sql),
            %error,
            "unparseable statement"
        ),
    }
}

/// Hooks of the MySQL listener.
#[derive(Debug)]
pub struct MysqlHooks {
    users: Users,
    pools: HashMap<String, Arc<sqlgate_mysql::Pool>>,
}

impl MysqlHooks {
    /// Hooks over these users and the pools of the MySQL targets.
    pub fn new(users: Users, pools: HashMap<String, Arc<sqlgate_mysql::Pool>>) -> Self {
        MysqlHooks { users, pools }
    }
}

impl sqlgate_mysql::Hooks for MysqlHooks {
    fn user(&self, name: &str) -> Option<sqlgate_mysql::UserAuth> {
        let u = self.users.get(name)?;
        Some(sqlgate_mysql::UserAuth {
            method: match u.auth {
                sqlgate_postgres::AuthMethod::Password => sqlgate_mysql::AuthMethod::Cleartext,
                sqlgate_postgres::AuthMethod::ScramSha256 => sqlgate_mysql::AuthMethod::Scramble,
            },
            secret: u.mysql_secret.clone()?,
        })
    }

    fn route(&self, user: &str, database: Option<&str>) -> Result<sqlgate_mysql::Route, MyError> {
        let u = self.users.get(user);
        let mut allowed: Vec<&str> = self
            .pools
            .keys()
            .map(String::as_str)
            .filter(|t| u.is_some_and(|u| u.may_use(t)))
            .collect();
        allowed.sort_unstable();
        let choices = if allowed.is_empty() {
            "none".to_owned()
        } else {
            allowed.join(", ")
        };
        let name = match (database, allowed.as_slice()) {
            (Some(db), _) => db,
            (None, [only]) => only,
            (None, _) => {
                return Err(MyError::new(
                    1046,
                    b"3D000",
                    format!("No database selected: connect with the name of a target as database (yours: {choices})"),
                ))
            }
        };
        let Some(pool) = self.pools.get(name) else {
            return Err(MyError::new(
                1049,
                b"42000",
                format!("Unknown database '{name}': sqlgate targets for '{user}': {choices}"),
            ));
        };
        if !allowed.contains(&name) {
            return Err(MyError::new(
                1044,
                b"42000",
                format!("Access denied for user '{user}' to database '{name}' (targets of '{user}': {choices})"),
            ));
        }
        Ok(sqlgate_mysql::Route {
            target: name.to_owned(),
            pool: pool.clone(),
        })
    }

    fn statement(
        &self,
        session: &sqlgate_mysql::SessionInfo,
        origin: sqlgate_mysql::StatementOrigin,
        sql: &[u8],
    ) {
        log_statement(
            SqlDialect::Mysql,
            session.id,
            &session.user,
            &session.target,
            origin,
            sql,
        );
    }
}
