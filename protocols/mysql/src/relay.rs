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

mod kill_cmd;
mod recorded;

use crate::backend::BackendConn;
use crate::error::ProtocolError;
use std::sync::Arc;

use crate::auth::MysqlSecret;
use crate::hooks::{AuthMethod, Hooks, SessionHooks, SessionInfo, StatementOrigin};
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

/// Limits of one session's relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Longest COM_QUERY / COM_STMT_PREPARE (held whole for the hook).
    pub max_statement_len: usize,
}

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

/// What a masking session remembers between commands.
#[derive(Debug, Default)]
pub struct MaskState {
    /// Results of this session may be masked.
    on: bool,
    /// The statements prepared in this session and their masks (`None`:
    /// the statement reads nothing masked), by statement id.
    statements: HashMap<u32, Option<Arc<dyn ResultMask>>>,
    /// The masks of a statement's last result set (for COM_STMT_FETCH
    /// from its cursor), by statement id.
    cursors: HashMap<u32, ActiveMask>,
    /// The id of the statement prepared last: MariaDB runs it for the id
    /// 0xFFFFFFFF.
    last_prepared: Option<u32>,
    /// The mask of result sets beyond those a text's statements announced.
    unknown: Option<Arc<dyn ResultMask>>,
}

impl MaskState {
    /// The state of a session whose judge says whether it masks.
    fn of(judge: &mut dyn SessionHooks) -> Self {
        let on = judge.masking();
        MaskState {
            on,
            unknown: if on { judge.unknown_result() } else { None },
            ..MaskState::default()
        }
    }
}

/// How a response is masked.
enum MaskPlan {
    /// COM_QUERY: one mask per statement, in order.
    Query(VecDeque<Arc<dyn ResultMask>>),
    /// COM_STMT_PREPARE: the statement id is remembered with its mask
    /// (none: the statement reads nothing masked), and as the last
    /// prepared.
    Prepare(Option<Arc<dyn ResultMask>>),
    /// COM_STMT_EXECUTE of a statement with a mask (binary rows).
    Execute(u32, Arc<dyn ResultMask>),
    /// COM_STMT_FETCH from a masked cursor (binary rows).
    Fetch(ActiveMask),
}

/// Longest COM_STMT_EXECUTE a recording session reads whole for its
/// parameters (a longer one is recorded without them).
const MAX_RECORDED_EXECUTE: usize = 1 << 20;
/// Prepared statements whose parameter types a session keeps, at most.
const MAX_PREPARED: usize = 4_096;

/// Longest masked row: one that needs a second fragment is not rewritten.
const MAX_MASKED_ROW: usize = MAX_FRAGMENT - 1;

/// Output is written to the client once this much has gathered.
const OUT_CHUNK: usize = 64 * 1024;

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
            RelayEnd::ClientGone => "client left",
            RelayEnd::Shutdown if !shutdown.is_cancelled() && ending.expired() => "token expired",
            RelayEnd::Shutdown if !shutdown.is_cancelled() => "ended by an operator",
            RelayEnd::Shutdown => "gateway shutdown",
            RelayEnd::ClientError(_) => "client protocol error",
            _ => "server connection lost",
        });
        end
    }

    async fn serve(&mut self, shutdown: &CancellationToken) -> RelayEnd {
        let mut sbuf = self.server.reader.take_buffered();
        self.masks = MaskState::of(self.judge.as_mut());
        self.timings = self.judge.timings();
        self.end = Some(shutdown.clone());
        // Registered once per session, not once per command.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
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
        wait: crate::hooks::BeforeForward<ClientError>,
    ) -> Result<Result<(), ClientError>, Side> {
        let mut wait = wait;
        let bound = self.limits.max_statement_len.saturating_add(HEADER_LEN);
        let held = self.held.clone();
        let end = self.end.clone().unwrap_or_default();
        loop {
            self.cbuf.reserve(1024);
            tokio::select! {
                r = &mut wait => return Ok(r),
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
                let masks = match self.judge.statement(origin, &text[1..]) {
                    Ok(masks) => masks,
                    Err(err) => {
                        self.send(seq.wrapping_add(1), &err.payload()).await?;
                        return Ok(true);
                    }
                };
                // What must complete before it runs (its record durable,
                // its approval).
                if let Some(wait) = self.judge.before_forward() {
                    if let Err(err) = self.watching_client(wait).await? {
                        self.send(seq.wrapping_add(1), &err.payload()).await?;
                        return Ok(true);
                    }
                }
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
                if let Err(err) = self.judge.statement(StatementOrigin::InitDb, &sql) {
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

    /// Forwards a response whose result sets may be masked, one whole
    /// packet at a time: column definitions are held until the last of a
    /// result set (they decide the masks, and masked columns may be
    /// reported as text), rows of masked result sets are rewritten.
    /// Output gathers and is written when the server has nothing more
    /// buffered, or in chunks.
    async fn relay_masked(
        &mut self,
        expect: Expect,
        plan: MaskPlan,
        sbuf: &mut BytesMut,
    ) -> Result<(), Side> {
        let malformed = |what| Side::Server(ProtocolError::Malformed(what));
        let mut response =
            Response::new(expect, self.server.deprecate_eof()).with_tap(self.tap(false));
        let binary = !matches!(plan, MaskPlan::Query(_));
        // Result sets of a text beyond its statements' masks: fail-closed.
        let beyond = if binary {
            None
        } else {
            self.masks.unknown.clone()
        };
        let (mut queue, fixed, statement, mut active) = match plan {
            MaskPlan::Query(q) => (q, None, None, None),
            MaskPlan::Prepare(m) => (VecDeque::new(), m, None, None),
            MaskPlan::Execute(id, m) => (VecDeque::new(), Some(m), Some(id), None),
            MaskPlan::Fetch(a) => (VecDeque::new(), None, None, Some(a)),
        };
        let prepare = matches!(expect, Expect::Prepare);
        let mut current: Option<Arc<dyn ResultMask>> = None;
        let mut columns: Vec<Column> = Vec::new();
        let mut held: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut out: Vec<u8> = Vec::with_capacity(OUT_CHUNK);
        let mut spans = Vec::new();
        let mut budget: Option<sqlgate_net::budget::Share> = None;
        loop {
            if response.done() {
                if !sbuf.is_empty() {
                    return Err(Side::Server(ProtocolError::Unexpected(
                        "server data after the end of a response",
                    )));
                }
                self.report(&mut response);
                break;
            }
            if response.wants_client_data() {
                self.flush_out(&mut out).await?;
                self.pass_infile().await?;
                response.client_data_sent();
                continue;
            }
            let whole = header(sbuf).filter(|(len, _)| sbuf.len() >= HEADER_LEN + len);
            let Some((len, seq)) = whole else {
                if sbuf.len() < HEADER_LEN || !out.is_empty() {
                    self.flush_out(&mut out).await?;
                }
                match header(sbuf) {
                    // A large packet held whole: its memory (and its masked
                    // copy's) comes from the process's budget first.
                    Some((len, _)) if len > sqlgate_net::budget::SMALL => {
                        if budget.is_none() {
                            let share = sqlgate_net::budget::hold(2 * len).await;
                            budget = Some(share.map_err(|b| Side::Server(b.into()))?);
                        }
                        sbuf.reserve((HEADER_LEN + len).saturating_sub(sbuf.len()));
                    }
                    _ => sbuf.reserve(READ_CHUNK),
                }
                match self.server.stream.io.read_buf(sbuf).await {
                    Ok(0) => return Err(Side::Server(ProtocolError::Truncated)),
                    Ok(_) => continue,
                    Err(e) => return Err(Side::Server(e.into())),
                }
            };
            let total = HEADER_LEN + len;
            let first = (len > 0).then(|| sbuf[HEADER_LEN]);
            let role = response.role(first, len);
            let scanned = response.scan(&sbuf[..total]).map_err(Side::Server)?;
            debug_assert_eq!(scanned, total);
            let payload = &sbuf[HEADER_LEN..total];
            let mut pass = true;
            match role {
                Role::ColumnCount => {
                    current = fixed
                        .clone()
                        .or_else(|| queue.front().cloned())
                        .or_else(|| beyond.clone());
                    active = None;
                    columns.clear();
                }
                Role::ColumnDef { last } if current.is_some() => {
                    columns
                        .push(mask::decode_column(payload).ok_or(malformed("column definition"))?);
                    held.push((seq, payload.to_vec()));
                    pass = false;
                    if last {
                        active = current.as_ref().and_then(|m| activate(m, &columns));
                        let mut sent = Vec::with_capacity(held.len());
                        for (i, (seq, p)) in held.drain(..).enumerate() {
                            let as_text = active
                                .as_ref()
                                .and_then(|a| a.cells[i].as_ref())
                                .is_some_and(|m| m.as_text(&columns[i]));
                            let p = if as_text {
                                mask::text_column(&p, &columns[i])
                                    .ok_or(malformed("column definition"))?
                            } else {
                                p
                            };
                            sent.extend(mask::decode_column(&p));
                            packet::encode(seq, &p, &mut out);
                        }
                        // The sample decodes rows by the columns the client
                        // was told (a masked date sent as text is text).
                        if let Some(tap) = response.tap_mut() {
                            tap.told(sent);
                        }
                        if let Some(id) = statement {
                            match &active {
                                Some(a) => self.masks.cursors.insert(id, a.clone()),
                                None => self.masks.cursors.remove(&id),
                            };
                        }
                    }
                }
                Role::Row if active.is_none() => {
                    // Unmasked rows of a masking session: as they pass.
                    if let Some(tap) = response.tap_mut() {
                        if tap.wants(len) {
                            tap.row(payload);
                        } else {
                            tap.skipped();
                        }
                    }
                }
                Role::Row | Role::Continuation if active.is_some() => {
                    let a = active.as_ref().expect("checked");
                    if len > MAX_MASKED_ROW || role == Role::Continuation {
                        return Err(Side::Server(ProtocolError::Unexpected(
                            "a row of 16 MiB or more in a masked result",
                        )));
                    }
                    // Masked where it lies when every masked value keeps
                    // its length (the row then passes as it is), else
                    // rewritten.
                    let in_place = mask::mask_row_in_place(
                        &mut sbuf[HEADER_LEN..total],
                        a,
                        binary,
                        &mut spans,
                    );
                    let out_at = out.len();
                    if !in_place {
                        // Rewritten straight into the output, after a
                        // header written once its length is known.
                        let payload = &sbuf[HEADER_LEN..total];
                        let at = out.len();
                        out.extend_from_slice(&[0; HEADER_LEN]);
                        let masked = if binary {
                            mask::mask_binary_row(payload, a, &mut out)
                        } else {
                            mask::mask_text_row(payload, a, &mut out)
                        };
                        masked.ok_or(malformed("row"))?;
                        let row_len = out.len() - at - HEADER_LEN;
                        if row_len > MAX_MASKED_ROW {
                            return Err(Side::Server(ProtocolError::Unexpected(
                                "a masked row of 16 MiB or more",
                            )));
                        }
                        out[at..at + 3].copy_from_slice(&(row_len as u32).to_le_bytes()[..3]);
                        out[at + 3] = seq;
                        pass = false;
                    }
                    if let Some(tap) = response.tap_mut() {
                        // The row as it leaves for the client: masked.
                        let seen = if in_place {
                            &sbuf[HEADER_LEN..total]
                        } else {
                            &out[out_at + HEADER_LEN..]
                        };
                        if tap.wants(seen.len()) {
                            tap.row(seen);
                        } else {
                            tap.skipped();
                        }
                    }
                }
                Role::EndOfRows => {
                    active = None;
                    if fixed.is_none() && !current.as_ref().is_some_and(|m| m.procedure()) {
                        queue.pop_front();
                    }
                }
                Role::Ok if fixed.is_none() => {
                    queue.pop_front();
                }
                Role::Other if first == Some(0xff) && len < MAX_FRAGMENT => {
                    let scrub = fixed
                        .as_ref()
                        .or(queue.front())
                        .map_or(mask::Scrub::Keep, |m| m.scrub());
                    if scrub != mask::Scrub::Keep {
                        if let Some(p) = mask::scrub_err(payload, scrub) {
                            packet::encode(seq, &p, &mut out);
                            pass = false;
                        }
                    }
                }
                Role::Other if prepare && first == Some(0x00) && len >= 5 => {
                    let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
                    self.masks.statements.insert(id, fixed.clone());
                    self.masks.cursors.remove(&id);
                    self.masks.last_prepared = Some(id);
                }
                _ => {}
            }
            if pass {
                out.extend_from_slice(&sbuf[..total]);
            }
            sbuf.advance(total);
            if out.len() >= OUT_CHUNK {
                self.flush_out(&mut out).await?;
            }
            if budget.take().is_some() && sbuf.capacity() > 4 * READ_CHUNK {
                // The held packet is gone: so is its memory, before its
                // share of the budget goes back.
                let mut small = BytesMut::with_capacity(READ_CHUNK.max(sbuf.len()));
                small.extend_from_slice(sbuf);
                *sbuf = small;
            }
        }
        self.flush_out(&mut out).await
    }

    async fn flush_out(&mut self, out: &mut Vec<u8>) -> Result<(), Side> {
        if !out.is_empty() {
            write(&mut self.client.io, out)
                .await
                .map_err(|e| Side::Client(e.into()))?;
            out.clear();
        }
        Ok(())
    }

    async fn send(&mut self, seq: u8, payload: &[u8]) -> Result<u8, Side> {
        packet::write(&mut self.client.io, seq, payload)
            .await
            .map_err(|e| Side::Client(e.into()))
    }

    /// COM_CHANGE_USER, answered by the gateway: the new user is checked
    /// against the gateway's users with the session's nonce, must stay on
    /// the same target, and gets a freshly reset server connection. The
    /// command never reaches the server. `Ok(false)` ends the session (as
    /// a server does after a failed change).
    async fn change_user(&mut self, payload: &[u8], seq: u8) -> Result<bool, Side> {
        let mut seq = seq.wrapping_add(1);
        let Some(cu) = change_user::decode(payload, self.client_caps) else {
            let err = ClientError::new(1047, b"08S01", "malformed COM_CHANGE_USER");
            self.send(seq, &err.payload()).await?;
            return Ok(false);
        };
        let known = self
            .hooks
            .user(&cu.user)
            .filter(|u| u.method != AuthMethod::Token);
        if known.is_none() && self.hooks.user(&cu.user).is_some() {
            let err = ClientError::new(
                1045,
                b"28000",
                "COM_CHANGE_USER cannot start a token login: reconnect with the token",
            );
            self.send(seq, &err.payload()).await?;
            return Ok(false);
        }
        let secret = known
            .as_ref()
            .map(|u| u.secret.clone())
            .unwrap_or_else(MysqlSecret::impossible);
        let nonce = self.nonce;
        let verified = match known.as_ref().map(|u| u.method) {
            Some(AuthMethod::Cleartext) if self.session.tls => {
                let mut switch = vec![0xfe];
                switch.extend_from_slice(b"mysql_clear_password\0");
                self.send(seq, &switch).await?;
                let (_, answer) = self.read_whole_command(0).await?;
                seq = seq.wrapping_add(2);
                secret.verify_clear(answer.strip_suffix(&[0]).unwrap_or(&answer))
            }
            Some(AuthMethod::Cleartext) => false,
            _ => match cu.plugin.as_deref() {
                None | Some(b"mysql_native_password") => secret.verify_native(&nonce, &cu.auth),
                Some(b"caching_sha2_password") => {
                    let ok = secret.verify_sha2(&nonce, &cu.auth);
                    if ok {
                        seq = self.send(seq, &[0x01, 0x03]).await?;
                    }
                    ok
                }
                Some(_) => {
                    let mut switch = vec![0xfe];
                    switch.extend_from_slice(b"mysql_native_password\0");
                    switch.extend_from_slice(&nonce);
                    switch.push(0);
                    self.send(seq, &switch).await?;
                    let (_, answer) = self.read_whole_command(0).await?;
                    seq = seq.wrapping_add(2);
                    secret.verify_native(&nonce, &answer)
                }
            },
        };
        let Some(identity) = known.and_then(|u| u.identity).filter(|_| verified) else {
            let err = ClientError::access_denied(&cu.user, &self.session.peer.ip().to_string());
            self.send(seq, &err.payload()).await?;
            return Ok(false);
        };
        let route = match self.hooks.route(
            &identity,
            cu.database.as_deref().or(Some(&self.session.target)),
        ) {
            Ok(r) if Arc::ptr_eq(&r.pool, self.pool) => r,
            Ok(_) => {
                let err = ClientError::new(
                    1044,
                    b"42000",
                    "COM_CHANGE_USER cannot move a session to another target: reconnect",
                );
                self.send(seq, &err.payload()).await?;
                return Ok(false);
            }
            Err(err) => {
                self.send(seq, &err.payload()).await?;
                return Ok(false);
            }
        };
        let database = self.pool.connector().backend().database.clone();
        self.server
            .reset(&database)
            .await
            .map_err(|e| Side::Server(ProtocolError::Io(std::io::Error::other(e.to_string()))))?;
        tracing::info!(session = self.session.id, from = %self.session.user, to = %cu.user, "COM_CHANGE_USER");
        self.session.user = cu.user;
        if identity.ends_at().is_none() {
            // The token that expired the session is no longer its login.
            if let Some(timer) = self.expiry.take() {
                timer.abort();
            }
        }
        self.session.identity = identity;
        self.session.target = route.target;
        self.kills.register(
            self.session.id,
            self.pool.clone(),
            self.server.thread_id,
            &self.session.user,
            self.server.key,
            self.held.clone(),
        );
        self.report_traffic();
        self.judge.ended("change user");
        self.params.clear();
        self.last_prepared = None;
        self.judge = self.hooks.session(&self.session);
        // The new identity's session: its own outcomes and records.
        self.outcomes = self.judge.outcomes();
        self.judge.connected(self.server.thread_id, None);
        self.masks = MaskState::of(self.judge.as_mut());
        self.timings = self.judge.timings();
        if self.judge.read_only() {
            self.server.set_read_only().await.map_err(|e| {
                Side::Server(ProtocolError::Io(std::io::Error::other(e.to_string())))
            })?;
        }
        self.send(seq, &ok::payload(ok::STATUS_AUTOCOMMIT)).await?;
        Ok(true)
    }

    /// Waits for the header of the client's next packet; its payload length.
    async fn next_packet_len(&mut self) -> Result<usize, Side> {
        let ok = fill(&mut self.client.io, &mut self.cbuf, HEADER_LEN)
            .await
            .map_err(|e| Side::Client(e.into()))?;
        header(&self.cbuf)
            .filter(|_| ok)
            .map(|(len, _)| len)
            .ok_or(Side::Client(ProtocolError::Truncated))
    }

    /// Reads a whole command (all fragments): `(raw bytes, joined payload)`.
    async fn read_whole_command(&mut self, first_len: usize) -> Result<(Vec<u8>, Vec<u8>), Side> {
        let mut raw = Vec::with_capacity(HEADER_LEN + first_len);
        let mut payload = Vec::with_capacity(first_len);
        loop {
            let len = self.next_packet_len().await?;
            if payload.len() + len > self.limits.max_statement_len {
                return Err(Side::Client(ProtocolError::TooLong {
                    len: payload.len() + len,
                    max: self.limits.max_statement_len,
                }));
            }
            let ok = fill(&mut self.client.io, &mut self.cbuf, HEADER_LEN + len)
                .await
                .map_err(|e| Side::Client(e.into()))?;
            if !ok {
                return Err(Side::Client(ProtocolError::Truncated));
            }
            raw.extend_from_slice(&self.cbuf[..HEADER_LEN + len]);
            payload.extend_from_slice(&self.cbuf[HEADER_LEN..HEADER_LEN + len]);
            self.cbuf.advance(HEADER_LEN + len);
            if len < MAX_FRAGMENT {
                return Ok((raw, payload));
            }
        }
    }

    /// Streams a command to the server without holding it whole.
    async fn pass_command(&mut self, expect: Option<Expect>) -> Result<Option<Expect>, Side> {
        self.stream_command(true).await?;
        Ok(expect)
    }

    /// Reads a command (all fragments) and drops it, without holding it.
    async fn discard_command(&mut self) -> Result<(), Side> {
        self.stream_command(false).await
    }

    /// Reads a command fragment by fragment, forwarding it to the server
    /// (`forward`) or dropping it.
    async fn stream_command(&mut self, forward: bool) -> Result<(), Side> {
        loop {
            let len = self.next_packet_len().await?;
            let mut left = HEADER_LEN + len;
            while left > 0 {
                if self.cbuf.is_empty() {
                    self.cbuf.reserve(READ_CHUNK);
                    let n = self
                        .client
                        .io
                        .read_buf(&mut self.cbuf)
                        .await
                        .map_err(|e| Side::Client(e.into()))?;
                    if n == 0 {
                        return Err(Side::Client(ProtocolError::Truncated));
                    }
                }
                let n = left.min(self.cbuf.len());
                if forward {
                    write(&mut self.server.stream.io, &self.cbuf[..n])
                        .await
                        .map_err(|e| Side::Server(e.into()))?;
                }
                self.cbuf.advance(n);
                left -= n;
            }
            if len < MAX_FRAGMENT {
                return Ok(());
            }
        }
    }

    /// Streams the client's LOCAL INFILE data (packets up to an empty one)
    /// to the server.
    async fn pass_infile(&mut self) -> Result<(), Side> {
        loop {
            let len = self.next_packet_len().await?;
            self.pass_command(None).await?;
            if len == 0 {
                return Ok(());
            }
        }
    }

    /// Forwards the server's response to the client until it is complete.
    async fn relay_response(&mut self, expect: Expect, sbuf: &mut BytesMut) -> Result<(), Side> {
        let mut response =
            Response::new(expect, self.server.deprecate_eof()).with_tap(self.tap(true));
        loop {
            let n = response.scan(sbuf).map_err(Side::Server)?;
            if n > 0 {
                write(&mut self.client.io, &sbuf[..n])
                    .await
                    .map_err(|e| Side::Client(e.into()))?;
                sbuf.advance(n);
            }
            if response.wants_client_data() {
                self.pass_infile().await?;
                response.client_data_sent();
                continue;
            }
            if response.done() {
                if !sbuf.is_empty() {
                    return Err(Side::Server(ProtocolError::Unexpected(
                        "server data after the end of a response",
                    )));
                }
                self.report(&mut response);
                return Ok(());
            }
            sbuf.reserve(READ_CHUNK);
            match self.server.stream.io.read_buf(sbuf).await {
                Ok(0) => return Err(Side::Server(ProtocolError::Truncated)),
                Ok(_) => {}
                Err(e) => return Err(Side::Server(e.into())),
            }
        }
    }
}

/// The masks of a result set with these columns, if any is masked.
fn activate(mask: &Arc<dyn ResultMask>, columns: &[Column]) -> Option<ActiveMask> {
    let cells = mask.columns(columns)?;
    cells.iter().any(Option::is_some).then(|| ActiveMask {
        columns: columns.to_vec(),
        cells,
    })
}

/// Reads until `buf` holds at least `n` bytes; `Ok(false)` at end of stream.
async fn fill<R: AsyncRead + Unpin + ?Sized>(
    rd: &mut R,
    buf: &mut BytesMut,
    n: usize,
) -> std::io::Result<bool> {
    while buf.len() < n {
        buf.reserve(READ_CHUNK.max(n - buf.len()));
        if rd.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn write<W: AsyncWrite + Unpin + ?Sized>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}
