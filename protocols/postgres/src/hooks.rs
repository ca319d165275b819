//! The one trait through which the gateway's engine (the `sqlgate`
//! package) takes part in a PostgreSQL session: who the users are, which
//! target a client may reach, and every statement text before it is
//! forwarded. Everything here is in wire terms; the protocol crate knows
//! nothing of policies.

use std::sync::Arc;

use crate::cancel::SessionId;
use crate::mask::ResultMask;
use crate::messages::error_response::ClientError;
use crate::pool::Pool;
use crate::scram::ScramSecret;
pub use sqlgate_net::identity::{Identity, Verifying};
pub use sqlgate_net::session::SessionEnd;
pub use sqlgate_net::verdict::{Notice, Refusal, RefusalKind, Ticket, Verdict};

/// How a gateway user proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// SCRAM-SHA-256: the password never crosses the wire.
    ScramSha256,
    /// Cleartext password; only ever accepted over TLS.
    Password,
    /// An identity provider's token as the cleartext password (only over
    /// TLS), validated by [`Hooks::verify_token`]: the user name named
    /// the provider.
    Token,
}

/// A gateway user's credentials.
#[derive(Debug, Clone)]
pub struct UserAuth {
    /// The method the user must use.
    pub method: AuthMethod,
    /// The verifier their password is checked against.
    pub secret: ScramSecret,
    /// Who they are once the password checks (`None` for token logins:
    /// the token says).
    pub identity: Option<Arc<Identity>>,
}

/// Where an authenticated session goes.
pub type Route = sqlgate_net::session::Route<Pool>;

/// Who a session is, for hooks and logs (its id is also the pid clients
/// see).
pub type SessionInfo = sqlgate_net::session::SessionInfo<SessionId>;

/// Where a statement text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementOrigin {
    /// A simple Query message (may hold several statements).
    Query,
    /// An extended-protocol Parse message.
    Parse,
    /// Settings from the client's startup packet, applied by the gateway.
    Startup,
    /// A FunctionCall message (the fastpath interface): a function called
    /// by OID, with no statement text; `sql` is empty.
    FunctionCall,
}

/// What the relay must know of one statement of a masking session: how
/// its results are masked, and what it does to the server's names.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The masks of its results. For `DECLARE`, the masks of the cursor's
    /// rows, which a later `FETCH` or Execute of the cursor returns.
    pub mask: Arc<dyn ResultMask>,
    /// Its effect on the server's prepared statements and portals, applied
    /// by the relay when the server reports the statement complete.
    pub effect: Effect,
}

/// What a statement does to the server's prepared statements and portals
/// (named as the server names them: unquoted names folded to lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Effect {
    /// Nothing the relay follows.
    #[default]
    None,
    /// `DECLARE name CURSOR`: a portal whose rows carry this statement's
    /// mask; `hold` survives its transaction's commit.
    Declare {
        /// The cursor's (portal's) name.
        name: Vec<u8>,
        /// `WITH HOLD`.
        hold: bool,
        /// `BINARY`: an Execute of the portal returns binary values.
        binary: bool,
    },
    /// `FETCH ... name`: rows of that portal, masked by its plan.
    Fetch(Vec<u8>),
    /// SQL `PREPARE name`: a statement the relay has no plan for.
    Prepare(Vec<u8>),
    /// SQL `EXECUTE name`: rows of that prepared statement (made by the
    /// protocol or by SQL), masked by its plan.
    Execute(Vec<u8>),
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close(Option<Vec<u8>>),
    /// `DEALLOCATE name`, or `DEALLOCATE ALL` (`None`).
    Deallocate(Option<Vec<u8>>),
}

/// The plans of a text's statements, in order (empty outside masking
/// sessions).
pub type Masks = Vec<Planned>;

/// The engine's side of a PostgreSQL session.
pub trait Hooks: Send + Sync + 'static {
    /// A gateway user's credentials, or `None` for an unknown user.
    fn user(&self, name: &str) -> Option<UserAuth>;

    /// Validates a token login: `provider` is the user name the client
    /// sent (naming an identity provider), `token` the password. The
    /// error is sent to the client as is (a short reason; never the
    /// token).
    fn verify_token(&self, provider: &str, token: String) -> Verifying<ClientError> {
        let _ = (provider, token);
        Box::pin(async {
            Err(ClientError::fatal(
                crate::messages::error_response::SqlState::INVALID_AUTHORIZATION,
                "token logins are not configured",
            ))
        })
    }

    /// The target an authenticated identity reaches with the database
    /// name it connected with; the error is sent to the client as is.
    fn route(&self, identity: &Identity, database: &str) -> Result<Route, ClientError>;

    /// The engine's side of one session, opened once it is routed.
    fn session(&self, session: &SessionInfo) -> Box<dyn SessionHooks>;
}

/// The engine's side of one session: judges every statement text before
/// it is forwarded.
pub trait SessionHooks: Send {
    /// Every statement text, before it is forwarded. The bytes are the
    /// client's; they need not be valid UTF-8. A refusal refuses the
    /// whole text: it never reaches the server and the client gets the
    /// error; a hold forwards it once its wait ends well. In a masking
    /// session what runs follows one plan per statement of the text
    /// (none otherwise).
    fn statement(&mut self, origin: StatementOrigin, sql: &[u8]) -> Verdict<Masks>;

    /// A text of [`sqlgate_net::ahead::LONG_TEXT`] bytes or more, before
    /// [`statement`](Self::statement) is asked about it: what the relay
    /// awaits first (the text judged off the relay's thread, so that
    /// judging it stalls no other session). `None`: nothing to await.
    fn ahead(&mut self, _sql: &[u8]) -> Option<sqlgate_net::ahead::Ahead> {
        None
    }

    /// Whether results of this session may be masked: the relay then
    /// follows which statement each result belongs to. Asked once, when
    /// the relay starts.
    fn masking(&mut self) -> bool {
        false
    }

    /// In a session that started without masking, whether masking rules
    /// have come to apply since (a policy reload): the relay then ends the
    /// session at the next Bind or Execute, which the statement hook never
    /// sees (a statement parsed before the reload would run unmasked).
    fn masking_now_applies(&mut self) -> bool {
        false
    }

    /// In a masking session, the mask of a result the relay cannot tie to
    /// a judged statement (a portal of a statement prepared outside the
    /// protocol, a result beyond those a text announced): fail-closed.
    fn unknown_result(&mut self) -> Option<Arc<dyn ResultMask>> {
        None
    }

    /// The server connection serving the session (PostgreSQL: its
    /// backend pid; MySQL: its thread id) and the client's
    /// application name, once the session is handed over.
    fn connected(&mut self, _server_id: u32, _application: Option<&str>) {}

    /// The session ended, and why.
    fn ended(&mut self, _end: SessionEnd) {}

    /// Whether each Bind is reported to [`SessionHooks::bound`] (the
    /// relay then reads Binds up to 1 MiB whole).
    fn records_binds(&mut self) -> bool {
        false
    }

    /// The Parse just judged was forwarded, naming its statement `name`
    /// (the server's key of it).
    fn parsed_as(&mut self, _name: &[u8]) {}

    /// A Bind of prepared statement `statement` with its parameter values
    /// (`None`: too large to read whole, or undecodable): whether it may
    /// run now (an execution held for approval, or durable before it
    /// runs, waits; a refused one fails as the Bind).
    fn bound(
        &mut self,
        _statement: &[u8],
        _parameters: Option<sqlgate_net::parameters::Parameters<'_>>,
    ) -> Verdict<()> {
        Verdict::Allow(())
    }

    /// Where this session's statement outcomes go (asked once, when the
    /// relay starts); `None`: nobody listens, nothing is inspected.
    fn outcomes(&mut self) -> Option<std::sync::Arc<dyn sqlgate_net::outcome::OutcomeSink>> {
        None
    }

    /// Where each request's server time goes (asked once, when the relay
    /// starts); `None`: requests are not timed.
    fn timings(&mut self) -> Option<sqlgate_net::outcome::Timings> {
        None
    }

    /// Whether the server session must be read-only
    /// (`default_transaction_read_only`): the identity can never write.
    fn read_only(&mut self) -> bool;
}
