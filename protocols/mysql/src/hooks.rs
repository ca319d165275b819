//! The one trait through which the engine takes part in a MySQL session,
//! in wire terms: users, routing by database name, and every statement
//! text (each COM_QUERY, each COM_STMT_PREPARE) before it is forwarded.

use std::sync::Arc;

use crate::auth::MysqlSecret;
use crate::messages::err::ClientError;
use crate::pool::Pool;
pub use sqlgate_net::identity::{Identity, Verifying};
pub use sqlgate_net::session::SessionEnd;
pub use sqlgate_net::verdict::{Notice, Refusal, RefusalKind, Ticket, Verdict};

/// How a gateway user authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Scrambled password (mysql_native_password or caching_sha2_password).
    Scramble,
    /// Cleartext password (mysql_clear_password), only over TLS.
    Cleartext,
    /// An identity provider's token as the password, only over TLS:
    /// caching_sha2_password's full authentication (what stock clients
    /// send without options) or mysql_clear_password; validated by
    /// [`Hooks::verify_token`]. The user name named the provider.
    Token,
}

/// A gateway user's credentials.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// The method.
    pub method: AuthMethod,
    /// The password hashes.
    pub secret: MysqlSecret,
    /// Who they are once the password checks (`None` for token logins:
    /// the token says).
    pub identity: Option<Arc<Identity>>,
}

/// Where an authenticated session goes.
pub type Route = sqlgate_net::session::Route<Pool>;

/// Who a session is (its id is the connection id clients see in the
/// handshake).
pub type SessionInfo = sqlgate_net::session::SessionInfo<u32>;

/// Where a statement text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementOrigin {
    /// COM_QUERY (may hold several statements).
    Query,
    /// COM_STMT_PREPARE.
    Prepare,
    /// COM_INIT_DB, judged as the `USE` statement it is.
    InitDb,
}

/// The masks of a text's statements, in order.
pub type Masks = Vec<std::sync::Arc<dyn crate::mask::ResultMask>>;

/// The engine's side of a MySQL session.
pub trait Hooks: Send + Sync + 'static {
    /// A user's credentials, or `None` when unknown.
    fn user(&self, name: &str) -> Option<UserAuth>;

    /// Validates a token login: `provider` is the user name the client
    /// sent (naming an identity provider), `token` the password. The
    /// error is sent to the client as is (a short reason; never the
    /// token).
    fn verify_token(&self, provider: &str, token: String) -> Verifying<ClientError> {
        let _ = (provider, token);
        Box::pin(async {
            Err(ClientError::new(
                1045,
                b"28000",
                "token logins are not configured",
            ))
        })
    }

    /// The target for a database name (`None`: the client named none).
    fn route(&self, identity: &Identity, database: Option<&str>) -> Result<Route, ClientError>;

    /// The engine's side of one session, opened once it is routed (and
    /// again after COM_CHANGE_USER).
    fn session(&self, session: &SessionInfo) -> Box<dyn SessionHooks>;
}

/// The engine's side of one session.
pub trait SessionHooks: Send {
    /// Every statement text before it is forwarded; a refusal refuses it
    /// (the client gets the ERR, the server never sees the command), a
    /// hold forwards it once its wait ends well. In a masking session
    /// what runs follows one mask per statement of the text (none
    /// otherwise).
    fn statement(&mut self, origin: StatementOrigin, sql: &[u8]) -> Verdict<Masks>;

    /// A text of [`sqlgate_net::ahead::LONG_TEXT`] bytes or more, before
    /// [`statement`](Self::statement) is asked about it: what the relay
    /// awaits first (the text judged off the relay's thread, so that
    /// judging it stalls no other session). `None`: nothing to await.
    fn ahead(&mut self, _sql: &[u8]) -> Option<sqlgate_net::ahead::Ahead> {
        None
    }

    /// Whether results of this session may be masked. Asked when the
    /// relay starts and after COM_CHANGE_USER.
    fn masking(&mut self) -> bool {
        false
    }

    /// In a masking session, the mask of a result set the relay cannot
    /// tie to a judged statement (more result sets than the text had
    /// statements, e.g. an `EXECUTE` of a prepared `CALL`): fail-closed.
    fn unknown_result(&mut self) -> Option<std::sync::Arc<dyn crate::mask::ResultMask>> {
        None
    }

    /// In a session that started without masking, whether masking rules
    /// have come to apply since (a policy reload): COM_STMT_EXECUTE and
    /// COM_STMT_FETCH, which the statement hook never sees, are then
    /// refused.
    fn masking_now_applies(&mut self) -> bool {
        false
    }

    /// The server connection serving the session (PostgreSQL: its
    /// backend pid; MySQL: its thread id) and the client's
    /// application name, once the session is handed over.
    fn connected(&mut self, _server_id: u32, _application: Option<&str>) {}

    /// The session ended, and why.
    fn ended(&mut self, _end: SessionEnd) {}

    /// Whether each COM_STMT_EXECUTE is reported to
    /// [`SessionHooks::executed`] (the relay then reads those up to 1 MiB
    /// whole for their parameters).
    fn records_executions(&mut self) -> bool {
        false
    }

    /// The COM_STMT_PREPARE just judged was prepared by the server as
    /// statement `id`.
    fn prepared_as(&mut self, _id: u32) {}

    /// A COM_STMT_EXECUTE of statement `id` with its parameter values
    /// (`None`: too large to read whole, or undecodable): whether it may
    /// run now (one held for approval, or durable before it runs, waits).
    fn executed(&mut self, _id: u32, _parameters: Option<Vec<Option<String>>>) -> Verdict<()> {
        Verdict::Allow(())
    }

    /// Where this session's statement outcomes go (asked once, when the
    /// relay starts); `None`: nobody listens.
    fn outcomes(&mut self) -> Option<std::sync::Arc<dyn sqlgate_net::outcome::OutcomeSink>> {
        None
    }

    /// Where each command's server time goes (asked when the relay starts
    /// and after COM_CHANGE_USER); `None`: commands are not timed.
    fn timings(&mut self) -> Option<sqlgate_net::outcome::Timings> {
        None
    }

    /// Whether the server session must be read-only
    /// (`SET SESSION TRANSACTION READ ONLY`): the identity can never write.
    fn read_only(&mut self) -> bool;
}
