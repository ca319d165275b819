//! The engine's side of the protocol crates' hook traits: user lookup,
//! routing a session to a target, and the statement hook point where
//! every statement text is judged by the policy and logged.

use std::collections::HashMap;
use std::sync::Arc;

use sqlgate_postgres::messages::error_response::{ClientError, SqlState};
use sqlgate_postgres::{
    Hooks, Masks, Planned, Pool, Route, SessionInfo, StatementOrigin, UserAuth,
};

use sqlgate_mysql::messages::err::ClientError as MyError;

use crate::auth::Users;
use crate::masking::mysql::MyResultMask;
use crate::masking::pg::PgResultMask;
use crate::masking::pg_names;
use crate::policy::engine::{Engine, Refusal};
use crate::policy::parse::SqlDialect;
use crate::store::writer::Recorder;
use sqlgate_net::identity::{Identity, Verifying};
use sqlgate_net::session::SessionEnd;
use sqlgate_net::verdict::Verdict;

/// Log target of the per-statement lines, so that they can be switched on
/// alone: `RUST_LOG=info,sqlgate::statement=debug`.
pub const STATEMENT_LOG: &str = "sqlgate::statement";

/// Hooks of the PostgreSQL listener.
#[derive(Debug)]
pub struct PgHooks {
    users: Users,
    pools: HashMap<String, Arc<Pool>>,
    engine: Arc<Engine>,
    recorder: Option<Recorder>,
    approvals: Option<crate::approvals::Approvals>,
    counters: Option<Arc<crate::admin::counters::Counters>>,
}

impl PgHooks {
    /// Hooks over these users, the pools of the PostgreSQL targets and the
    /// policy engine.
    pub fn new(users: Users, pools: HashMap<String, Arc<Pool>>, engine: Arc<Engine>) -> Self {
        PgHooks {
            users,
            pools,
            engine,
            recorder: None,
            approvals: None,
            counters: None,
        }
    }

    /// Records every session.
    pub fn with_recorder(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Holds statements rules review for approval (without: refused).
    pub fn with_approvals(mut self, approvals: Option<crate::approvals::Approvals>) -> Self {
        self.approvals = approvals;
        self
    }

    /// Counts sessions, statements and refusals for `/metrics`.
    pub fn with_counters(mut self, counters: Arc<crate::admin::counters::Counters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Token logins from these identity providers.
    pub fn with_providers(mut self, providers: Arc<crate::oidc::Providers>) -> Self {
        self.users = std::mem::take(&mut self.users).with_providers(providers);
        self
    }

    /// The PostgreSQL targets' pools.
    pub fn pools(&self) -> HashMap<String, Arc<Pool>> {
        self.pools.clone()
    }

    fn targets_of(&self, identity: &Identity) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .pools
            .keys()
            .map(String::as_str)
            .filter(|t| identity.may_use(t))
            .collect();
        names.sort_unstable();
        names
    }
}

/// A token login refused, on the PostgreSQL wire (28000, the reason).
fn pg_token_refusal(r: crate::oidc::TokenRefusal) -> ClientError {
    ClientError::fatal(
        SqlState::INVALID_AUTHORIZATION,
        format!("token login failed: {r}"),
    )
}

/// A token login refused, on the MySQL wire (1045, the reason).
fn my_token_refusal(r: crate::oidc::TokenRefusal) -> MyError {
    MyError::new(1045, b"28000", format!("token login failed: {r}"))
}

impl Hooks for PgHooks {
    fn user(&self, name: &str) -> Option<UserAuth> {
        if let Some((u, identity)) = self.users.get(name) {
            return Some(UserAuth {
                method: u.auth,
                secret: u.secret.clone(),
                identity: Some(identity.clone()),
            });
        }
        self.users.providers().has(name).then(|| UserAuth {
            method: sqlgate_postgres::AuthMethod::Token,
            // Never checked: the token is.
            secret: sqlgate_postgres::ScramSecret::mock(name, &[0; 32]),
            identity: None,
        })
    }

    fn verify_token(&self, provider: &str, token: String) -> Verifying<ClientError> {
        let (providers, provider) = (self.users.providers().clone(), provider.to_owned());
        Box::pin(async move {
            providers
                .verify(&provider, &token)
                .await
                .map_err(pg_token_refusal)
        })
    }

    fn route(&self, identity: &Identity, database: &str) -> Result<Route, ClientError> {
        let user = &identity.user;
        let allowed = self.targets_of(identity);
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

    fn session(&self, session: &SessionInfo) -> Box<dyn sqlgate_postgres::SessionHooks> {
        Box::new(PgJudge(Judge::new(
            &self.engine,
            SqlDialect::Postgres,
            session.id.0,
            (&session.identity, &session.target),
            Seat {
                recorder: self.recorder.as_ref(),
                approvals: self.approvals.as_ref(),
                estimator: self
                    .pools
                    .get(&session.target)
                    .map(|p| crate::approvals::blast::Estimator::Postgres(p.clone())),
                peer: session.peer,
                tls: session.tls,
                counters: self.counters.as_ref(),
            },
        )))
    }
}

/// Log target of refusals (at info).
pub const POLICY_LOG: &str = "sqlgate::policy";

mod held;
mod judge;

use judge::{Judge, Seat};

struct PgJudge(Judge);

impl sqlgate_postgres::SessionHooks for PgJudge {
    fn ahead(&mut self, sql: &[u8]) -> Option<sqlgate_net::ahead::Ahead> {
        self.0.ahead(sql)
    }

    fn statement(&mut self, origin: StatementOrigin, sql: &[u8]) -> Verdict<Masks> {
        let judged = if origin == StatementOrigin::FunctionCall {
            if self.0.masking == Some(true) || self.0.masking_now_applies() {
                // Its result is one value of a function called by OID:
                // nothing says where it comes from.
                return Verdict::Refuse(sqlgate_net::verdict::Refusal {
                    kind: sqlgate_net::verdict::RefusalKind::Masking,
                    rule: None,
                    tags: Vec::new(),
                    reason:
                        "masking: fastpath function calls are not allowed where masking rules apply"
                            .to_owned(),
                    detail: String::new(),
                    hint: "call the function in a statement".to_owned(),
                    position: 0,
                });
            }
            let judged = self.0.policy.judge_function_call();
            self.0.durable = self.0.log.function_call(judged.as_ref().err());
            judged.map(|()| Vec::new())
        } else {
            self.0.judge(origin, sql).map(|judged| {
                if judged.iter().all(|j| j.masks.is_none()) {
                    return Vec::new();
                }
                let catalog = self.0.policy.catalog();
                let key = self.0.policy.hash_key();
                judged
                    .into_iter()
                    .filter_map(|j| {
                        let effect = pg_names::effect(&j.statement);
                        j.masks.map(|masks| Planned {
                            mask: Arc::new(PgResultMask {
                                masks,
                                catalog: catalog.clone(),
                                key: key.clone(),
                                cells: self.0.masked_cells(),
                            }),
                            effect,
                        })
                    })
                    .collect()
            })
        };
        judge::verdict(&mut self.0, judged)
    }

    fn outcomes(&mut self) -> Option<Arc<dyn sqlgate_net::outcome::OutcomeSink>> {
        self.0.log.outcome_sink()
    }

    fn records_binds(&mut self) -> bool {
        self.0.follows_executions()
    }

    fn parsed_as(&mut self, name: &[u8]) {
        self.0.prepared_as(name, false);
    }

    fn bound(
        &mut self,
        statement: &[u8],
        parameters: Option<sqlgate_net::parameters::Parameters<'_>>,
    ) -> Verdict<()> {
        self.0.executed(statement, parameters);
        judge::verdict(&mut self.0, Ok(()))
    }

    fn connected(&mut self, server_id: u32, application: Option<&str>) {
        self.0.application = application.map(str::to_owned);
        self.0.log.connected(server_id, application);
    }

    fn ended(&mut self, end: SessionEnd) {
        self.0.log.ended(end.reason());
    }

    fn read_only(&mut self) -> bool {
        self.0.policy.read_only()
    }

    fn timings(&mut self) -> Option<sqlgate_net::outcome::Timings> {
        self.0.timings()
    }

    fn masking(&mut self) -> bool {
        let on = self.0.policy.masking();
        self.0.masking = Some(on);
        on
    }

    fn masking_now_applies(&mut self) -> bool {
        self.0.masking_now_applies()
    }

    fn unknown_result(&mut self) -> Option<Arc<dyn sqlgate_postgres::mask::ResultMask>> {
        Some(Arc::new(PgResultMask {
            masks: self.0.policy.unknown_result(),
            catalog: self.0.policy.catalog(),
            key: self.0.policy.hash_key(),
            cells: self.0.masked_cells(),
        }))
    }
}

struct MyJudge(Judge);

impl sqlgate_mysql::SessionHooks for MyJudge {
    fn ahead(&mut self, sql: &[u8]) -> Option<sqlgate_net::ahead::Ahead> {
        self.0.ahead(sql)
    }

    fn statement(
        &mut self,
        origin: sqlgate_mysql::StatementOrigin,
        sql: &[u8],
    ) -> Verdict<sqlgate_mysql::Masks> {
        let masking = self.0.masking == Some(true);
        let judged = self
            .0
            .judge(origin, sql)
            .and_then(|judged| {
                // MariaDB skips version-gated comments the gateway reads:
                // with a `;` inside, the two would count statements, and
                // so results, differently.
                if masking && judged.len() > 1 && sql.windows(3).any(|w| w == b"/*!") {
                    return Err(Refusal {
                        verdict: crate::policy::rules::Verdict::Deny,
                        by: crate::policy::engine::RefusedBy::Masking,
                        message: "masking: executable comments (/*! ... */) in a text of several statements".to_owned(),
                        detail: "where masking rules apply, each result must be tied to its statement".to_owned(),
                        hint: "send the statements one by one".to_owned(),
                        position: 1,
                        rule: None,
                        tags: crate::policy::tags::TagSet::EMPTY,
                    });
                }
                Ok(judged)
            })
            .map(|judged| {
                // Most texts mask nothing: no catalog, key or counter is
                // fetched for them, and no list is built.
                if judged.iter().all(|j| j.masks.is_none()) {
                    return Vec::new();
                }
                let policy = &self.0.policy;
                let (catalog, key) = (policy.catalog(), policy.hash_key());
                let cells = self.0.masked_cells();
                judged
                    .into_iter()
                    .filter_map(|j| j.masks)
                    .map(|masks| {
                        Arc::new(MyResultMask {
                            masks,
                            catalog: catalog.clone(),
                            key: key.clone(),
                            cells: cells.clone(),
                        }) as Arc<dyn sqlgate_mysql::mask::ResultMask>
                    })
                    .collect()
            });
        judge::verdict(&mut self.0, judged)
    }

    fn outcomes(&mut self) -> Option<Arc<dyn sqlgate_net::outcome::OutcomeSink>> {
        self.0.log.outcome_sink()
    }

    fn records_executions(&mut self) -> bool {
        self.0.follows_executions()
    }

    fn prepared_as(&mut self, id: u32) {
        self.0.prepared_as(id.to_string().as_bytes(), true);
    }

    fn executed(&mut self, id: u32, parameters: Option<Vec<Option<String>>>) -> Verdict<()> {
        self.0.executed(
            id.to_string().as_bytes(),
            parameters
                .as_deref()
                .map(sqlgate_net::parameters::Parameters::Values),
        );
        judge::verdict(&mut self.0, Ok(()))
    }

    fn connected(&mut self, server_id: u32, application: Option<&str>) {
        self.0.application = application.map(str::to_owned);
        self.0.log.connected(server_id, application);
    }

    fn ended(&mut self, end: SessionEnd) {
        self.0.log.ended(end.reason());
    }

    fn read_only(&mut self) -> bool {
        self.0.policy.read_only()
    }

    fn timings(&mut self) -> Option<sqlgate_net::outcome::Timings> {
        self.0.timings()
    }

    fn masking(&mut self) -> bool {
        let on = self.0.policy.masking();
        self.0.masking = Some(on);
        on
    }

    fn unknown_result(&mut self) -> Option<Arc<dyn sqlgate_mysql::mask::ResultMask>> {
        Some(Arc::new(MyResultMask {
            masks: self.0.policy.unknown_result(),
            catalog: self.0.policy.catalog(),
            key: self.0.policy.hash_key(),
            cells: self.0.masked_cells(),
        }))
    }

    fn masking_now_applies(&mut self) -> bool {
        self.0.masking_now_applies()
    }
}

/// Hooks of the MySQL listener.
#[derive(Debug)]
pub struct MysqlHooks {
    users: Users,
    pools: HashMap<String, Arc<sqlgate_mysql::Pool>>,
    engine: Arc<Engine>,
    recorder: Option<Recorder>,
    approvals: Option<crate::approvals::Approvals>,
    counters: Option<Arc<crate::admin::counters::Counters>>,
}

impl MysqlHooks {
    /// Hooks over these users, the pools of the MySQL targets and the
    /// policy engine.
    pub fn new(
        users: Users,
        pools: HashMap<String, Arc<sqlgate_mysql::Pool>>,
        engine: Arc<Engine>,
    ) -> Self {
        MysqlHooks {
            users,
            pools,
            engine,
            recorder: None,
            approvals: None,
            counters: None,
        }
    }

    /// Records every session.
    pub fn with_recorder(mut self, recorder: Option<Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// Holds statements rules review for approval (without: refused).
    pub fn with_approvals(mut self, approvals: Option<crate::approvals::Approvals>) -> Self {
        self.approvals = approvals;
        self
    }

    /// Counts sessions, statements and refusals for `/metrics`.
    pub fn with_counters(mut self, counters: Arc<crate::admin::counters::Counters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Token logins from these identity providers.
    pub fn with_providers(mut self, providers: Arc<crate::oidc::Providers>) -> Self {
        self.users = std::mem::take(&mut self.users).with_providers(providers);
        self
    }

    /// A target's pool.
    pub fn pool(&self, target: &str) -> Option<Arc<sqlgate_mysql::Pool>> {
        self.pools.get(target).cloned()
    }

    /// The MySQL targets' pools.
    pub fn pools(&self) -> HashMap<String, Arc<sqlgate_mysql::Pool>> {
        self.pools.clone()
    }
}

impl sqlgate_mysql::Hooks for MysqlHooks {
    fn user(&self, name: &str) -> Option<sqlgate_mysql::UserAuth> {
        let Some((u, identity)) = self.users.get(name) else {
            return self
                .users
                .providers()
                .has(name)
                .then(|| sqlgate_mysql::UserAuth {
                    method: sqlgate_mysql::AuthMethod::Token,
                    secret: sqlgate_mysql::auth::MysqlSecret::impossible(),
                    identity: None,
                });
        };
        Some(sqlgate_mysql::UserAuth {
            method: match u.auth {
                sqlgate_postgres::AuthMethod::Password => sqlgate_mysql::AuthMethod::Cleartext,
                _ => sqlgate_mysql::AuthMethod::Scramble,
            },
            secret: u.mysql_secret.clone()?,
            identity: Some(identity.clone()),
        })
    }

    fn verify_token(&self, provider: &str, token: String) -> Verifying<MyError> {
        let (providers, provider) = (self.users.providers().clone(), provider.to_owned());
        Box::pin(async move {
            providers
                .verify(&provider, &token)
                .await
                .map_err(my_token_refusal)
        })
    }

    fn route(
        &self,
        identity: &Identity,
        database: Option<&str>,
    ) -> Result<sqlgate_mysql::Route, MyError> {
        let user = &identity.user;
        let mut allowed: Vec<&str> = self
            .pools
            .keys()
            .map(String::as_str)
            .filter(|t| identity.may_use(t))
            .collect();
        allowed.sort_unstable();
        let choices = if allowed.is_empty() {
            "none".to_owned()
        } else {
            allowed.join(", ")
        };
        let default = identity.default_target.as_deref();
        let name = match (database, allowed.as_slice(), default) {
            (Some(db), _, _) => db,
            (None, [only], _) => only,
            // No database named, several targets: the user's default.
            (None, _, Some(d)) => d,
            (None, _, None) => {
                return Err(MyError::new(
                    1046,
                    b"3D000",
                    format!("No database selected: connect with the name of a target as database (yours: {choices}), or give the user a default_target"),
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

    fn session(
        &self,
        session: &sqlgate_mysql::SessionInfo,
    ) -> Box<dyn sqlgate_mysql::SessionHooks> {
        let mut judge = Judge::new(
            &self.engine,
            SqlDialect::Mysql,
            session.id,
            (&session.identity, &session.target),
            Seat {
                recorder: self.recorder.as_ref(),
                approvals: self.approvals.as_ref(),
                estimator: self
                    .pools
                    .get(&session.target)
                    .map(|p| crate::approvals::blast::Estimator::Mysql(p.clone())),
                peer: session.peer,
                tls: session.tls,
                counters: self.counters.as_ref(),
            },
        );
        if let Some(pool) = self.pools.get(&session.target) {
            judge.policy = judge
                .policy
                .confined_to(&pool.connector().backend().database);
        }
        Box::new(MyJudge(judge))
    }
}
