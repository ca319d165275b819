//! The data path of an established MySQL session. The protocol is strictly
//! request/response, so the relay is one loop: read a command from the
//! client, judge it, forward it, then forward the server's response until
//! [`Response`] says it is complete. Bytes pass through unchanged; only
//! COM_QUERY and COM_STMT_PREPARE are held whole (for the statement hook).
//! Commands the gateway does not know are answered with an ERR and never
//! reach the server.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

mod changing_user;
mod io;
mod kill_cmd;
mod masked;
mod recorded;

use io::{fill, write};
use masked::MaskPlan;
pub use masked::MaskState;

use crate::backend::BackendConn;
use crate::error::ProtocolError;
use std::sync::Arc;

use crate::auth::MysqlSecret;
use crate::hooks::{
    AuthMethod, Hooks, SessionEnd, SessionHooks, SessionInfo, StatementOrigin, Verdict,
};
use crate::kill::{self, Kill, KillRegistry};
use crate::mask::{self, ActiveMask, Column, ResultMask};
use crate::messages::err::ClientError;
use crate::messages::{change_user, command, ok};
use crate::packet::{self, header, HEADER_LEN, MAX_FRAGMENT};
use crate::pool::Pool;
use crate::response::{Expect, Response, Role};
use crate::stream::Stream;
use std::collections::{HashMap, VecDeque};

const READ_CHUNK: usize = 64 * 1024;

pub use sqlgate_net::session::RelayLimits;

/// Why a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// COM_QUIT or the client closed its connection between commands.
    ClientGone,
    /// The client broke the protocol or its socket failed.
    ClientError(ProtocolError),
    /// The server closed the connection.
    ServerGone,
    /// The server broke the protocol or its socket failed.
    ServerError(ProtocolError),
    /// The gateway is shutting down and the session was idle.
    Shutdown,
}

impl RelayEnd {
    /// The server connection is between commands and can be reset.
    pub fn reusable(&self) -> bool {
        matches!(self, RelayEnd::ClientGone | RelayEnd::Shutdown)
    }
}

/// One session's relay state.
pub struct Relay<'a> {
    /// The client.
    pub client: &'a mut Stream,
    /// Client bytes read and not yet handled.
    pub cbuf: BytesMut,
    /// The server connection.
    pub server: &'a mut BackendConn,
    /// Who (COM_CHANGE_USER changes it).
    pub session: SessionInfo,
    /// The nonce of the session's handshake (COM_CHANGE_USER scrambles
    /// are computed with it).
    pub nonce: [u8; 20],
    /// The client's capability flags.
    pub client_caps: u32,
    /// The engine.
    pub hooks: &'a dyn Hooks,
    /// The engine's side of this session (its statement judge).
    pub judge: Box<dyn SessionHooks>,
    /// Limits.
    pub limits: RelayLimits,
    /// Gateway connection ids → server threads, for KILL.
    pub kills: &'a KillRegistry,
    /// Woken by a KILL of this session: a held statement is withdrawn.
    pub held: Arc<tokio::sync::Notify>,
    /// This session's pool (KILL reaches threads of the same target).
    pub pool: &'a Arc<Pool>,
    /// Masking state (start with `Default`).
    pub masks: MaskState,
    /// Where each command's server time goes (the judge's, asked when the
    /// relay starts and after COM_CHANGE_USER).
    pub timings: Option<sqlgate_net::outcome::Timings>,
    /// Stops the login token's expiry (a COM_CHANGE_USER to an identity
    /// that does not expire).
    pub expiry: Option<tokio::task::AbortHandle>,
    /// The session's end (set when the relay starts): a statement held
    /// for approval is withdrawn when it fires.
    pub end: Option<CancellationToken>,
    /// Where statement outcomes go, if anywhere.
    pub outcomes: Option<Arc<dyn sqlgate_net::outcome::OutcomeSink>>,
    /// The client connection's bytes each way (counted by its stream).
    pub traffic: Arc<sqlgate_net::traffic::Traffic>,
    /// The command being answered (start with 0).
    pub command: u8,
    /// Prepared statements' parameter counts and last bound types, for a
    /// recording session (start empty).
    pub params: std::collections::HashMap<u32, (usize, Option<crate::sample::ParamTypes>)>,
    /// The statement prepared last (start with `None`).
    pub last_prepared: Option<u32>,
}

/// Longest COM_STMT_EXECUTE a recording session reads whole for its
/// parameters (a longer one is recorded without them).
const MAX_RECORDED_EXECUTE: usize = 1 << 20;
/// Prepared statements whose parameter types a session keeps, at most.
const MAX_PREPARED: usize = 4_096;

enum Side {
    Client(ProtocolError),
    Server(ProtocolError),
}

impl Relay<'_> {
    /// Runs until the client leaves, a side fails, or shutdown at an idle
    /// point.
    ///
    /// `ending` is the session's own end (its token's expiry, an
    /// operator's end, or the gateway's `shutdown`, its parent).
    pub async fn run(
        mut self,
        ending: &sqlgate_net::identity::ExpiringEnd,
        shutdown: &CancellationToken,
    ) -> RelayEnd {
        let thread = self.server.thread_id;
        self.judge.connected(thread, None);
        let ended = self.serve(&ending.end).await;
        self.report_traffic();
        let end = ended;
        self.judge.ended(match &end {
            RelayEnd::ClientGone => SessionEnd::ClientLeft,
            RelayEnd::Shutdown if !shutdown.is_cancelled() && ending.expired() => {
                SessionEnd::TokenExpired
            }
            RelayEnd::Shutdown if !shutdown.is_cancelled() => SessionEnd::ByOperator,
            RelayEnd::Shutdown => SessionEnd::GatewayShutdown,
            RelayEnd::ClientError(_) => SessionEnd::ClientProtocolError,
            _ => SessionEnd::ServerLost,
        });
        end
    }

    async fn serve(&mut self, shutdown: &CancellationToken) -> RelayEnd {
        let mut sbuf = self.server.reader.take_buffered();
        self.masks = MaskState::of(self.judge.as_mut());
        self.timings = self.judge.timings();
        self.end = Some(shutdown.clone());
        // Registered once per session, not once per command; polled at
        // each command as a flag, not the token's locks.
        let mut cancelled = sqlgate_net::woken::ShutdownWait::shutdown(shutdown);
        loop {
            // Idle: wait for the next command (or shutdown).
            // The end comes first: a client that writes its commands ahead
            // must not keep an ending session going.
            let ready = tokio::select! {
                biased;
                _ = &mut cancelled => return RelayEnd::Shutdown,
                r = fill(&mut self.client.io, &mut self.cbuf, HEADER_LEN + 1) => r,
            };
            match ready {
                Ok(true) => {}
                Ok(false) if self.cbuf.is_empty() => return RelayEnd::ClientGone,
                Ok(false) => return RelayEnd::ClientError(ProtocolError::Truncated),
                Err(e) => return RelayEnd::ClientError(e.into()),
            }
            let started = self.timings.is_some().then(std::time::Instant::now);
            let result = self.command(&mut sbuf).await;
            if let (Some(timings), Some(started)) = (&self.timings, started) {
                timings(started.elapsed());
            }
            match result {
                Ok(true) => {}
                Ok(false) => return RelayEnd::ClientGone,
                Err(Side::Client(e)) => return RelayEnd::ClientError(e),
                Err(Side::Server(ProtocolError::Truncated)) => return RelayEnd::ServerGone,
                Err(Side::Server(e)) => return RelayEnd::ServerError(e),
            }
        }
    }

    /// Awaits `wait` while watching the client: one that leaves ends the
    /// session and drops the wait (a statement held for approval is
    /// withdrawn), as does a KILL of this session (the statement fails as
    /// an interrupted one). Bytes the client sends meanwhile are kept, up
    /// to a bound.
    async fn watching_client(
        &mut self,
        ticket: crate::hooks::Ticket,
    ) -> Result<Result<(), ClientError>, Side> {
        // MySQL has no notice a client shows while it waits.
        let mut wait = ticket.wait;
        let bound = self.limits.max_statement_len.saturating_add(HEADER_LEN);
        let held = self.held.clone();
        let end = self.end.clone().unwrap_or_default();
        loop {
            self.cbuf.reserve(1024);
            tokio::select! {
                r = &mut wait => return Ok(r.map_err(ClientError::from)),
                // The session is ending (an operator, its token's expiry,
                // a shutdown): what waits never runs.
                _ = end.cancelled() => {
                    return Ok(Err(ClientError::new(
                        1317,
                        b"70100",
                        "Query execution was interrupted (sqlgate: withdrawn, the session is ending)",
                    )))
                }
                _ = held.notified() => {
                    return Ok(Err(ClientError::new(
                        1317,
                        b"70100",
                        "Query execution was interrupted (sqlgate: withdrawn before it ran)",
                    )))
                }
                n = self.client.io.read_buf(&mut self.cbuf), if self.cbuf.len() < bound => match n {
                    Ok(0) => return Err(Side::Client(ProtocolError::Truncated)),
                    Ok(_) => {}
                    Err(e) => return Err(Side::Client(e.into())),
                },
            }
        }
    }

    /// Before a long text is judged: what the hooks ask to await (its
    /// judging off the runtime's thread).
    async fn ahead(&mut self, sql: &[u8]) {
        if sql.len() >= sqlgate_net::ahead::LONG_TEXT {
            if let Some(ahead) = self.judge.ahead(sql) {
                ahead.await;
            }
        }
    }

    /// One command and its response; `Ok(false)` on COM_QUIT.
    async fn command(&mut self, sbuf: &mut BytesMut) -> Result<bool, Side> {
        let (len, seq) = header(&self.cbuf).ok_or(Side::Client(ProtocolError::Truncated))?;
        if len == 0 {
            // No command byte: what follows would be read as one.
            return Err(Side::Client(ProtocolError::Malformed("empty command")));
        }
        let cmd = self.cbuf[HEADER_LEN];
        self.command = cmd;
        let mut plan = None;
        let expect = match cmd {
            command::QUIT => return Ok(false),
            command::QUERY | command::STMT_PREPARE => {
                let (raw, text) = self.read_whole_command(len).await?;
                if cmd == command::QUERY {
                    if let Some(Ok(kill)) = kill::parse(&text[1..]) {
                        if kill.query_only {
                            // Cancelling a query of one's own sessions is
                            // a cancel, not an administrative kill: no
                            // policy applies (another identity's session is
                            // unreachable either way).
                            return self.kill(Ok(kill), seq, sbuf).await;
                        }
                    }
                }
                let origin = if cmd == command::QUERY {
                    StatementOrigin::Query
                } else {
                    StatementOrigin::Prepare
                };
                self.ahead(&text[1..]).await;
                let masks = match self.judge.statement(origin, &text[1..]) {
                    Verdict::Allow(masks) => masks,
                    Verdict::Refuse(refusal) => {
                        let err = ClientError::from(refusal);
                        self.send(seq.wrapping_add(1), &err.payload()).await?;
                        return Ok(true);
                    }
                    // What must complete before it runs (its record
                    // durable, its approval).
                    Verdict::Hold { ticket, then } => {
                        if let Err(err) = self.watching_client(ticket).await? {
                            self.send(seq.wrapping_add(1), &err.payload()).await?;
                            return Ok(true);
                        }
                        then
                    }
                };
                if self.masks.on {
                    plan = if cmd == command::QUERY {
                        (!masks.is_empty()).then(|| MaskPlan::Query(masks.into()))
                    } else {
                        // Every prepare, masked or not: its id is the one
                        // MariaDB runs for the id 0xFFFFFFFF.
                        Some(MaskPlan::Prepare(masks.into_iter().next()))
                    };
                }
                if cmd == command::QUERY {
                    if let Some(kill) = kill::parse(&text[1..]) {
                        return self.kill(kill, seq, sbuf).await;
                    }
                }
                write(&mut self.server.stream.io, &raw)
                    .await
                    .map_err(|e| Side::Server(e.into()))?;
                Some(if cmd == command::QUERY {
                    Expect::Results
                } else {
                    Expect::Prepare
                })
            }
            command::STMT_EXECUTE | command::STMT_FETCH
                if !self.masks.on && self.judge.masking_now_applies() =>
            {
                self.read_whole_command(len).await?;
                let err = ClientError::new(
                    1142,
                    b"42000",
                    "masking rules now apply to this session (the policy was reloaded): reconnect",
                );
                self.send(seq.wrapping_add(1), &err.payload()).await?;
                None
            }
            command::STMT_EXECUTE | command::STMT_FETCH | command::STMT_CLOSE if self.masks.on => {
                if len < 5 {
                    // The id would be read from the next packet.
                    return Err(Side::Client(ProtocolError::Malformed(
                        "statement command without a statement id",
                    )));
                }
                let mut id = self.statement_id().await?;
                if id == u32::MAX {
                    id = self.masks.last_prepared.unwrap_or(id);
                }
                if cmd != command::STMT_CLOSE && !self.masks.statements.contains_key(&id) {
                    // Not prepared in this session as far as the relay
                    // knows: the server would refuse it too, and if the
                    // two ever disagreed its results would go unmasked.
                    self.read_whole_command(len).await?;
                    let err = ClientError::new(
                        1243,
                        b"HY000",
                        format!("Unknown prepared statement handler ({id}) given to sqlgate"),
                    );
                    self.send(seq.wrapping_add(1), &err.payload()).await?;
                    return Ok(true);
                }
                plan = match cmd {
                    command::STMT_EXECUTE => self
                        .masks
                        .statements
                        .get(&id)
                        .cloned()
                        .flatten()
                        .map(|m| MaskPlan::Execute(id, m)),
                    command::STMT_FETCH => {
                        self.masks.cursors.get(&id).cloned().map(MaskPlan::Fetch)
                    }
                    _ => {
                        self.masks.statements.remove(&id);
                        self.masks.cursors.remove(&id);
                        None
                    }
                };
                match cmd {
                    command::STMT_EXECUTE => self.execute(len).await?,
                    command::STMT_FETCH => self.pass_command(Some(Expect::Rows)).await?,
                    _ => self.pass_command(None).await?,
                }
            }
            command::STMT_EXECUTE => self.execute(len).await?,
            command::STMT_FETCH => self.pass_command(Some(Expect::Rows)).await?,
            command::STMT_SEND_LONG_DATA | command::STMT_CLOSE => self.pass_command(None).await?,
            command::INIT_DB => {
                let (raw, payload) = self.read_whole_command(len).await?;
                let mut sql = b"USE `".to_vec();
                for &b in &payload[1..] {
                    if b == b'`' {
                        sql.push(b'`');
                    }
                    sql.push(b);
                }
                sql.push(b'`');
                self.ahead(&sql).await;
                // A held one (its record durable first) waits like a query.
                if let Some(err) = match self.judge.statement(StatementOrigin::InitDb, &sql) {
                    Verdict::Allow(_) => None,
                    Verdict::Refuse(refusal) => Some(ClientError::from(refusal)),
                    Verdict::Hold { ticket, .. } => self.watching_client(ticket).await?.err(),
                } {
                    self.send(seq.wrapping_add(1), &err.payload()).await?;
                    return Ok(true);
                }
                write(&mut self.server.stream.io, &raw)
                    .await
                    .map_err(|e| Side::Server(e.into()))?;
                Some(Expect::Single)
            }
            command::RESET_CONNECTION => {
                // The server forgets prepared statements.
                self.masks.statements.clear();
                self.masks.cursors.clear();
                self.params.clear();
                self.last_prepared = None;
                if let Some(expect) = self.pass_command(Some(Expect::Single)).await? {
                    self.relay_response(expect, sbuf).await?;
                }
                // The reset ended the read-only session too: again.
                if self.judge.read_only() {
                    self.server.set_read_only().await.map_err(|e| {
                        Side::Server(ProtocolError::Io(std::io::Error::other(e.to_string())))
                    })?;
                }
                None
            }
            command::STMT_RESET | command::PING | command::SET_OPTION | command::STATISTICS => {
                self.pass_command(Some(Expect::Single)).await?
            }
            command::FIELD_LIST => self.pass_command(Some(Expect::FieldList)).await?,
            command::CHANGE_USER => {
                let (_, payload) = self.read_whole_command(len).await?;
                return self.change_user(&payload[1..], seq).await;
            }
            other => {
                // Unknown to the gateway (or not allowed through it): read
                // and drop it, answer ERR; the server never sees it.
                self.read_whole_command(len).await?;
                let err = match other {
                    command::PROCESS_KILL => ClientError::new(
                        1047,
                        b"08S01",
                        "COM_PROCESS_KILL is not supported through sqlgate: use KILL QUERY <id>",
                    ),
                    // Dumps server internals to its log: a SUPER-only
                    // action no statement hook could judge.
                    command::DEBUG => {
                        ClientError::new(1227, b"42000", "COM_DEBUG is not allowed through sqlgate")
                    }
                    _ => ClientError::new(1047, b"08S01", format!("Unknown command {other:#04x}")),
                };
                self.send(seq.wrapping_add(1), &err.payload()).await?;
                None
            }
        };
        match (expect, plan) {
            (Some(expect), Some(plan)) => self.relay_masked(expect, plan, sbuf).await?,
            (Some(expect), None) => self.relay_response(expect, sbuf).await?,
            _ => {}
        }
        Ok(true)
    }

    /// The statement id of the COM_STMT_* command at the front of `cbuf`.
    async fn statement_id(&mut self) -> Result<u32, Side> {
        let ok = fill(&mut self.client.io, &mut self.cbuf, HEADER_LEN + 5)
            .await
            .map_err(|e| Side::Client(e.into()))?;
        if !ok {
            return Err(Side::Client(ProtocolError::Truncated));
        }
        let b = &self.cbuf[HEADER_LEN + 1..HEADER_LEN + 5];
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
