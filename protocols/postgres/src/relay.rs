//! The data path of an established session: two directions that run at
//! once in one task, so that a server's asynchronous messages
//! (NotificationResponse, NoticeResponse, ParameterStatus) reach an idle
//! client immediately.
//!
//! Bytes are forwarded as they arrive. Only the boundaries of messages are
//! tracked; a message is held back whole only when the gateway must read
//! it (Query and Parse for the statement hook; ReadyForQuery and
//! ParameterStatus from the server), so a huge DataRow or CopyData streams
//! through with bounded memory. Each write is awaited before the next read,
//! which carries a slow client's backpressure to the server.
//!
//! This module must never change a byte it does not have to: the
//! rewrites are the `session_authorization` ParameterStatus, which would
//! otherwise reveal the server-side user, and refusals.
//!
//! **Refusals.** A Query or Parse the hook refuses is not forwarded: in its
//! place the server gets a *marker* (the same message kind, for a
//! statement that fails at parse analysis because it names a column that
//! cannot exist). The server then does exactly what it does for any
//! failing statement: it aborts a transaction block, skips the rest of an
//! extended-protocol batch up to Sync, answers a Flush, and orders the
//! error after the responses to everything sent before. The downstream
//! side swaps the marker's ErrorResponse for the refusal. If an earlier
//! message of the batch failed first, the server never reaches the
//! marker; the client sees that earlier error, as it would without the
//! gateway, and the refusal is dropped at the batch's ReadyForQuery.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backend::{set_param, BackendConn};
use crate::error::ProtocolError;
use crate::frame::{peek_header, HEADER_LEN};
use crate::hooks::{SessionHooks, StatementOrigin};
use crate::mask::{self, ActiveMask, Field, ResultMask};
use crate::messages::error_response::message_field;
use crate::messages::{backend_tag, frontend_tag, parameter_status, query, TX_IDLE};
use crate::stream::ClientStream;

/// How much the relay reads at once in each direction.
const READ_CHUNK: usize = 64 * 1024;
/// Longest ParameterStatus or ReadyForQuery we accept from a server.
const MAX_INSPECTED_SERVER_MESSAGE: usize = 1 << 20;
/// Longest message of any kind (PostgreSQL's own limit is 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;
/// Longest Bind a masking session holds whole (its result formats come
/// last, after the parameters).
const MAX_HELD_BIND: usize = 64 << 20;

/// Limits of one session's relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Longest Query or Parse message; these are held whole for the hook.
    pub max_statement_len: usize,
}

/// Why a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// The client sent Terminate or closed its connection.
    ClientGone,
    /// The client broke the protocol or its socket failed.
    ClientError(ProtocolError),
    /// The server closed the connection.
    ServerGone,
    /// The server connection failed.
    ServerError(ProtocolError),
    /// The gateway is shutting down and the session was idle.
    Shutdown,
}

/// State both directions share. Atomics because the session future must be
/// `Send`; both directions run in the same task, so `Relaxed` suffices.
#[derive(Debug)]
struct Shared {
    /// Query/Sync/FunctionCall messages forwarded minus ReadyForQuery
    /// received: zero means the server owes the client nothing.
    pending: AtomicI64,
    /// Transaction status of the last ReadyForQuery.
    status: AtomicU8,
    /// An extended-protocol message was sent after the last Sync.
    unsynced: AtomicBool,
    /// Set during shutdown: wake the session when it becomes idle.
    draining: AtomicBool,
    idle: Notify,
    /// Refusals whose markers the server has not answered yet, in order.
    refusals: Mutex<VecDeque<Queued>>,
    /// `refusals.len()`, readable without the lock.
    refusals_len: AtomicUsize,
    /// ReadyForQuery messages received (batches the server finished).
    batches_done: AtomicU64,
    /// In a masking session: the responses the server owes, in order,
    /// with the masks of the results among them.
    expects: Mutex<VecDeque<Expect>>,
}

/// The columns of a prepared statement, filled in when the server answers
/// the Describe the relay sends after its Parse.
type FieldsSlot = Arc<OnceLock<Vec<Field>>>;

/// A response the server owes (masking sessions only).
#[derive(Debug)]
enum Expect {
    /// A simple Query: the masks of its statements still to run, then
    /// ReadyForQuery.
    Query(VecDeque<Arc<dyn ResultMask>>),
    /// ParseComplete, BindComplete or CloseComplete.
    Complete,
    /// ParameterDescription and RowDescription or NoData.
    Describe {
        /// The statement's or portal's mask (for the types the client is
        /// told).
        mask: Option<Arc<dyn ResultMask>>,
        /// Sent by the relay itself: the answer fills this slot and is
        /// not forwarded.
        injected: Option<FieldsSlot>,
    },
    /// The rows of an Execute, up to CommandComplete, EmptyQueryResponse
    /// or PortalSuspended.
    Execute {
        mask: Option<Arc<dyn ResultMask>>,
        fields: FieldsSlot,
        formats: Vec<i16>,
    },
    /// ReadyForQuery of a Sync or FunctionCall.
    Ready,
}

impl Expect {
    /// Ends a batch: ReadyForQuery pops up to and including it.
    fn is_ready(&self) -> bool {
        matches!(self, Expect::Query(_) | Expect::Ready)
    }
}

/// A prepared statement of a masking session.
#[derive(Debug, Clone, Default)]
struct Prepared {
    mask: Option<Arc<dyn ResultMask>>,
    fields: FieldsSlot,
}

/// A portal of a masking session.
#[derive(Debug, Clone, Default)]
struct Portal {
    statement: Prepared,
    formats: Vec<i16>,
}

/// A refusal waiting for its marker's error.
#[derive(Debug)]
struct Queued {
    /// The batch (counted in ReadyForQuery-producing messages) it is in.
    batch: u64,
    /// The encoded ErrorResponse the client gets.
    error: BytesMut,
}

impl Shared {
    fn new() -> Self {
        Shared {
            pending: AtomicI64::new(0),
            status: AtomicU8::new(TX_IDLE),
            unsynced: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
            refusals: Mutex::new(VecDeque::new()),
            refusals_len: AtomicUsize::new(0),
            batches_done: AtomicU64::new(0),
            expects: Mutex::new(VecDeque::new()),
        }
    }

    fn expect(&self, e: Expect) {
        self.expects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(e);
    }

    fn queue(&self, q: Queued) {
        let mut list = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        list.push_back(q);
        self.refusals_len.store(list.len(), Ordering::Relaxed);
    }

    /// Takes the front refusal if it belongs to the current batch.
    fn take_current(&self) -> Option<Queued> {
        let current = self.batches_done.load(Ordering::Relaxed) + 1;
        let mut list = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        let out = list
            .front()
            .is_some_and(|q| q.batch <= current)
            .then(|| list.pop_front())?;
        self.refusals_len.store(list.len(), Ordering::Relaxed);
        out
    }
}

/// The column name the marker statement uses: random per process, so no
/// real statement's error can be mistaken for a marker's.
fn marker_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| format!("sqlgate_refused_{:016x}", rand::random::<u64>()))
}

/// The marker sent in place of a refused Query or Parse.
fn marker(tag: u8) -> BytesMut {
    let sql = format!("SELECT {}", marker_name());
    let mut body = Vec::with_capacity(sql.len() + 8);
    if tag == frontend_tag::PARSE {
        body.push(0); // the unnamed statement
    }
    body.extend_from_slice(sql.as_bytes());
    body.push(0);
    if tag == frontend_tag::PARSE {
        body.extend_from_slice(&0i16.to_be_bytes()); // no parameter types
    }
    let mut out = BytesMut::with_capacity(body.len() + HEADER_LEN);
    out.extend_from_slice(&[tag]);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// What the session needs to know once the relay has ended.
#[derive(Debug)]
pub struct RelayOutcome {
    /// Why it ended.
    pub end: RelayEnd,
    /// The server connection is between requests and can be reset.
    pub reusable: bool,
    /// Transaction status of the last ReadyForQuery.
    pub status: u8,
    /// The client left an extended-protocol exchange without Sync.
    pub unsynced: bool,
    /// The last message forwarded to the client was an ErrorResponse.
    pub last_was_error: bool,
}

/// Runs a session until either side ends it.
pub async fn run(
    client: &mut ClientStream,
    client_buf: &mut BytesMut,
    server: &mut BackendConn,
    user: &str,
    hooks: &mut dyn SessionHooks,
    limits: RelayLimits,
    shutdown: &CancellationToken,
) -> RelayOutcome {
    let shared = Shared::new();
    let BackendConn {
        stream,
        rbuf,
        params,
        ..
    } = server;
    let (mut client_rd, mut client_wr) = client.split();
    let (mut server_rd, mut server_wr) = stream.split();
    let masking = hooks.masking();
    let unknown = if masking {
        hooks.unknown_result()
    } else {
        None
    };
    let mut up = Upstream {
        skip: 0,
        discard: 0,
        hooks,
        limits,
        shared: &shared,
        batches_sent: 0,
        masking,
        statements: HashMap::new(),
        portals: HashMap::new(),
        unknown: unknown.clone(),
    };
    let mut down = Downstream {
        skip: 0,
        shared: &shared,
        params,
        user,
        last_tag: 0,
        tracker: masking.then(|| Tracker {
            unknown,
            ..Tracker::default()
        }),
        out: BytesMut::new(),
    };
    let end = {
        let c2s = up.run(&mut client_rd, &mut server_wr, client_buf);
        let s2c = down.run(&mut server_rd, &mut client_wr, rbuf);
        tokio::pin!(c2s, s2c);
        loop {
            tokio::select! {
                r = &mut c2s => break r,
                r = &mut s2c => break r,
                _ = shutdown.cancelled(), if !shared.draining.load(Ordering::Relaxed) => {
                    shared.draining.store(true, Ordering::Relaxed);
                    if shared.pending.load(Ordering::Relaxed) == 0 {
                        break RelayEnd::Shutdown;
                    }
                }
                _ = shared.idle.notified(), if shared.draining.load(Ordering::Relaxed) => {
                    if shared.pending.load(Ordering::Relaxed) == 0 {
                        break RelayEnd::Shutdown;
                    }
                }
            }
        }
    };
    let pending = shared.pending.load(Ordering::Relaxed);
    RelayOutcome {
        reusable: matches!(end, RelayEnd::ClientGone | RelayEnd::Shutdown)
            && pending == 0
            && down.skip == 0,
        status: shared.status.load(Ordering::Relaxed),
        unsynced: shared.unsynced.load(Ordering::Relaxed),
        last_was_error: down.last_tag == backend_tag::ERROR_RESPONSE,
        end,
    }
}

/// Client → server.
struct Upstream<'a> {
    /// Bytes of a passed-through message still to forward.
    skip: usize,
    /// Bytes of a refused message still to drop.
    discard: usize,
    hooks: &'a mut dyn SessionHooks,
    limits: RelayLimits,
    shared: &'a Shared,
    /// ReadyForQuery-producing messages forwarded (Query, Sync,
    /// FunctionCall): the number of the batch in progress, minus one.
    batches_sent: u64,
    /// Results may be masked: responses are followed (`Shared::expects`).
    masking: bool,
    /// Prepared statements of a masking session, by name.
    statements: HashMap<Vec<u8>, Prepared>,
    /// Portals of a masking session, by name.
    portals: HashMap<Vec<u8>, Portal>,
    /// The mask of results not tied to a judged statement.
    unknown: Option<Arc<dyn ResultMask>>,
}

enum Scan {
    /// Forward `0..n` and read more.
    Forward(usize),
    /// Forward `0..n`; then the client has terminated.
    Terminate(usize),
    /// Forward `0..upto`, then send `extra` (a message of the relay's
    /// own) and go on scanning.
    Inject { upto: usize, extra: BytesMut },
    /// Forward `0..before`, send `marker`, drop the `len` bytes after
    /// (those not read yet are dropped as they arrive).
    Refuse {
        before: usize,
        len: usize,
        marker: BytesMut,
    },
}

impl Upstream<'_> {
    async fn run<R, W>(&mut self, rd: &mut R, wr: &mut W, buf: &mut BytesMut) -> RelayEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let scan = match self.scan(buf) {
                Ok(s) => s,
                Err(e) => return RelayEnd::ClientError(e),
            };
            let (n, terminate) = match scan {
                Scan::Forward(n) => (n, false),
                Scan::Terminate(n) => (n, true),
                Scan::Inject { upto, extra } => {
                    let sent = async {
                        wr.write_all(&buf[..upto]).await?;
                        write(wr, &extra).await
                    };
                    if let Err(e) = sent.await {
                        return RelayEnd::ServerError(e.into());
                    }
                    buf.advance(upto);
                    continue;
                }
                Scan::Refuse {
                    before,
                    len,
                    marker,
                } => {
                    let sent = async {
                        wr.write_all(&buf[..before]).await?;
                        write(wr, &marker).await
                    };
                    if let Err(e) = sent.await {
                        return RelayEnd::ServerError(e.into());
                    }
                    let here = len.min(buf.len() - before);
                    buf.advance(before + here);
                    self.discard = len - here;
                    continue;
                }
            };
            if n > 0 {
                if let Err(e) = write(wr, &buf[..n]).await {
                    return RelayEnd::ServerError(e.into());
                }
                buf.advance(n);
            }
            if terminate {
                return RelayEnd::ClientGone;
            }
            buf.reserve(READ_CHUNK);
            match rd.read_buf(buf).await {
                Ok(0) => {
                    return if buf.is_empty() && self.skip == 0 {
                        RelayEnd::ClientGone
                    } else {
                        RelayEnd::ClientError(ProtocolError::Truncated)
                    }
                }
                Ok(_) => {}
                Err(e) => return RelayEnd::ClientError(e.into()),
            }
        }
    }

    /// Walks the complete or passed-through messages at the front of `buf`
    /// and returns how many bytes may be forwarded now.
    fn scan(&mut self, buf: &mut BytesMut) -> Result<Scan, ProtocolError> {
        if self.discard > 0 {
            let n = self.discard.min(buf.len());
            buf.advance(n);
            self.discard -= n;
            if self.discard > 0 {
                return Ok(Scan::Forward(0));
            }
        }
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    return Ok(Scan::Forward(pos));
                }
            }
            let Some((tag, total)) = peek_header(&buf[pos..], MAX_MESSAGE)? else {
                return Ok(Scan::Forward(pos));
            };
            if !self.masking && matches!(tag, b'B' | b'E') && self.hooks.masking_now_applies() {
                return Err(ProtocolError::Unexpected {
                    tag,
                    during:
                        "after a policy reload made masking rules apply to this session: reconnect",
                });
            }
            // Messages the relay reads whole: statements for the hook, and
            // in a masking session what says which result is which.
            let whole = match tag {
                frontend_tag::QUERY | frontend_tag::PARSE => Some(self.limits.max_statement_len),
                b'B' if self.masking => Some(MAX_HELD_BIND),
                b'D' | b'E' | b'C' if self.masking => Some(self.limits.max_statement_len),
                _ => None,
            };
            if let Some(max) = whole {
                if total > max {
                    return Err(ProtocolError::TooLong {
                        tag,
                        len: total,
                        max,
                    });
                }
                if buf.len() - pos < total {
                    buf.reserve(total - (buf.len() - pos));
                    return Ok(Scan::Forward(pos));
                }
            }
            match tag {
                frontend_tag::QUERY | frontend_tag::PARSE => {
                    let body = &buf[pos + HEADER_LEN..pos + total];
                    let (verdict, name) = if tag == frontend_tag::QUERY {
                        let sql = query::query_text(body)?;
                        self.shared.pending.fetch_add(1, Ordering::Relaxed);
                        self.batches_sent += 1;
                        (self.hooks.statement(StatementOrigin::Query, sql), None)
                    } else {
                        let (name, sql) = query::parse_text(body)?;
                        self.shared.unsynced.store(true, Ordering::Relaxed);
                        (
                            self.hooks.statement(StatementOrigin::Parse, sql),
                            Some(name.to_vec()),
                        )
                    };
                    match verdict {
                        Err(refusal) => {
                            let mut error = BytesMut::new();
                            refusal.encode(&mut error);
                            // A Query is its own batch (counted above); a
                            // Parse belongs to the batch its Sync ends.
                            let batch = if tag == frontend_tag::QUERY {
                                self.batches_sent
                            } else {
                                self.batches_sent + 1
                            };
                            self.shared.queue(Queued { batch, error });
                            if self.masking {
                                self.shared.expect(match name {
                                    None => Expect::Query(VecDeque::new()),
                                    Some(_) => Expect::Complete,
                                });
                            }
                            return Ok(Scan::Refuse {
                                before: pos,
                                len: total,
                                marker: marker(tag),
                            });
                        }
                        Ok(masks) if self.masking => match name {
                            None => self.shared.expect(Expect::Query(masks.into())),
                            Some(name) => {
                                self.shared.expect(Expect::Complete);
                                let statement = Prepared {
                                    mask: masks.into_iter().next(),
                                    fields: FieldsSlot::default(),
                                };
                                let inject = statement.mask.is_some().then(|| {
                                    self.shared.expect(Expect::Describe {
                                        mask: None,
                                        injected: Some(statement.fields.clone()),
                                    });
                                    mask::describe_statement(&name)
                                });
                                // A named statement that exists already:
                                // the server refuses the Parse (42P05)
                                // and keeps the old one, so does the relay.
                                if name.is_empty() || !self.statements.contains_key(&name) {
                                    self.statements.insert(name, statement);
                                }
                                if let Some(extra) = inject {
                                    return Ok(Scan::Inject {
                                        upto: pos + total,
                                        extra,
                                    });
                                }
                            }
                        },
                        Ok(_) => {}
                    }
                }
                frontend_tag::SYNC => {
                    self.shared.pending.fetch_add(1, Ordering::Relaxed);
                    self.shared.unsynced.store(false, Ordering::Relaxed);
                    self.batches_sent += 1;
                    if self.masking {
                        self.shared.expect(Expect::Ready);
                    }
                }
                frontend_tag::FUNCTION_CALL => {
                    self.shared.pending.fetch_add(1, Ordering::Relaxed);
                    self.batches_sent += 1;
                    if self.masking {
                        self.shared.expect(Expect::Ready);
                    }
                    // Judged before its body is read: nothing in it says
                    // more than "a function by OID".
                    if let Err(refusal) = self.hooks.statement(StatementOrigin::FunctionCall, b"") {
                        let mut error = BytesMut::new();
                        refusal.encode(&mut error);
                        self.shared.queue(Queued {
                            batch: self.batches_sent,
                            error,
                        });
                        return Ok(Scan::Refuse {
                            before: pos,
                            len: total,
                            marker: marker(frontend_tag::QUERY),
                        });
                    }
                }
                frontend_tag::TERMINATE => return Ok(Scan::Terminate(pos)),
                b'B' | b'E' | b'D' | b'C' => {
                    self.shared.unsynced.store(true, Ordering::Relaxed);
                    if self.masking {
                        self.track_extended(tag, &buf[pos + HEADER_LEN..pos + total]);
                    }
                }
                _ => {}
            }
            self.skip = total;
        }
    }
}

impl Upstream<'_> {
    /// Follows Bind, Execute, Describe and Close in a masking session:
    /// which statement a portal runs and in which formats, and what the
    /// server will answer. A body that does not decode is forwarded as is
    /// (the server rejects it) with the answer it gets expected.
    fn track_extended(&mut self, tag: u8, body: &[u8]) {
        let expect = match tag {
            b'B' => {
                if let Some(b) = mask::decode_bind(body) {
                    let statement = self
                        .statements
                        .get(&b.statement)
                        .cloned()
                        .unwrap_or_default();
                    self.portals.insert(
                        b.portal,
                        Portal {
                            statement,
                            formats: b.formats,
                        },
                    );
                }
                Expect::Complete
            }
            b'E' => {
                // A portal the relay did not see bound (a cursor declared
                // in SQL is a portal too): fail-closed.
                let portal = mask::decode_execute(body)
                    .and_then(|p| self.portals.get(p))
                    .cloned()
                    .unwrap_or_else(|| Portal {
                        statement: Prepared {
                            mask: self.unknown.clone(),
                            fields: FieldsSlot::default(),
                        },
                        formats: Vec::new(),
                    });
                Expect::Execute {
                    mask: portal.statement.mask,
                    fields: portal.statement.fields,
                    formats: portal.formats,
                }
            }
            b'D' => match mask::decode_target(body) {
                Some((b'S', name)) => Expect::Describe {
                    mask: match self.statements.get(name) {
                        Some(s) => s.mask.clone(),
                        None => self.unknown.clone(),
                    },
                    injected: None,
                },
                Some((_, name)) => Expect::Describe {
                    mask: self
                        .portals
                        .get(name)
                        .and_then(|p| p.statement.mask.clone()),
                    injected: None,
                },
                None => Expect::Describe {
                    mask: None,
                    injected: None,
                },
            },
            _ => {
                match mask::decode_target(body) {
                    Some((b'S', name)) => self.statements.remove(name),
                    Some((_, name)) => self.portals.remove(name).map(|p| p.statement),
                    None => None,
                };
                Expect::Complete
            }
        };
        self.shared.expect(expect);
    }
}

/// Server → client.
struct Downstream<'a> {
    skip: usize,
    shared: &'a Shared,
    params: &'a mut Vec<(String, String)>,
    /// The gateway user, shown as `session_authorization`.
    user: &'a str,
    last_tag: u8,
    /// In a masking session: which result is which, and its masks.
    tracker: Option<Tracker>,
    /// Output gathered when messages are rewritten.
    out: BytesMut,
}

/// What becomes of a server message.
enum Rewrite {
    /// Dropped (the answer to the relay's own Describe).
    Drop,
    /// Replaced by these bytes.
    With(BytesMut),
    /// Replaced by what the tracker wrote to its scratch buffer.
    Scratch,
}

impl Downstream<'_> {
    async fn run<R, W>(&mut self, rd: &mut R, wr: &mut W, buf: &mut BytesMut) -> RelayEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut rewritten = BytesMut::new();
        loop {
            if let Err(e) = self.forward(wr, buf, &mut rewritten).await {
                return e;
            }
            buf.reserve(READ_CHUNK);
            match rd.read_buf(buf).await {
                Ok(0) => return RelayEnd::ServerGone,
                Ok(_) => {}
                Err(e) => return RelayEnd::ServerError(e.into()),
            }
        }
    }

    /// Forwards everything forwardable in `buf`, tracking ReadyForQuery and
    /// ParameterStatus on the way.
    async fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        wr: &mut W,
        buf: &mut BytesMut,
        rewritten: &mut BytesMut,
    ) -> Result<(), RelayEnd> {
        let mut pos = 0;
        let mut emitted = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    break;
                }
            }
            let header = peek_header(&buf[pos..], MAX_MESSAGE).map_err(RelayEnd::ServerError)?;
            let Some((tag, total)) = header else { break };
            self.last_tag = tag;
            // The hot path of a masked result: a row whose masked cells
            // keep their length is masked where it lies and streams on.
            if tag == b'D' {
                if let Some(a) = self.tracker.as_ref().and_then(|t| t.active.as_ref()) {
                    if buf.len() - pos < total {
                        inspected(buf, pos, tag, total, MAX_MESSAGE)?;
                        break;
                    }
                    if mask::mask_data_row_in_place(&mut buf[pos + HEADER_LEN..pos + total], a) {
                        self.skip = total;
                        continue;
                    }
                }
            }
            let refusal_pending = tag == backend_tag::ERROR_RESPONSE
                && self.shared.refusals_len.load(Ordering::Relaxed) > 0;
            let tracked = self
                .tracker
                .as_ref()
                .and_then(|t| t.needs_body(tag, self.shared));
            let limit = match tag {
                backend_tag::READY_FOR_QUERY | backend_tag::PARAMETER_STATUS => {
                    Some(MAX_INSPECTED_SERVER_MESSAGE)
                }
                _ if refusal_pending => Some(MAX_INSPECTED_SERVER_MESSAGE),
                _ => tracked,
            };
            let body = match limit {
                Some(max) => match inspected(buf, pos, tag, total, max)? {
                    Some(body) => Some(body),
                    None => break,
                },
                None => None,
            };
            let mut rewrite = None;
            if refusal_pending {
                let is_marker = body.and_then(message_field).is_some_and(|m| {
                    m.windows(marker_name().len())
                        .any(|w| w == marker_name().as_bytes())
                });
                if is_marker {
                    if let Some(q) = self.shared.take_current() {
                        rewrite = Some(Rewrite::With(q.error));
                    }
                }
            }
            if let Some(t) = &mut self.tracker {
                let r = t
                    .observe(tag, body, self.shared)
                    .map_err(RelayEnd::ServerError)?;
                if rewrite.is_none() {
                    rewrite = r;
                }
            }
            match (tag, body) {
                (backend_tag::READY_FOR_QUERY, Some(body)) => self.ready(body),
                (backend_tag::PARAMETER_STATUS, Some(body)) => {
                    if let Some((name, value)) = parameter_status::decode(body) {
                        if name == "session_authorization" {
                            // Hide the server-side user behind the gateway user.
                            rewritten.clear();
                            parameter_status::encode(name, self.user, rewritten);
                            rewrite = Some(Rewrite::With(std::mem::take(rewritten)));
                        } else {
                            set_param(self.params, name.to_owned(), value.to_owned());
                        }
                    }
                }
                _ => {}
            }
            if let Some(r) = rewrite {
                // Rewritten messages gather with what came before them
                // and go out in one write.
                self.out.extend_from_slice(&buf[emitted..pos]);
                match r {
                    Rewrite::With(bytes) => self.out.extend_from_slice(&bytes),
                    Rewrite::Scratch => {
                        if let Some(t) = &mut self.tracker {
                            self.out.extend_from_slice(&t.scratch);
                            t.scratch.clear();
                        }
                    }
                    Rewrite::Drop => {}
                }
                emitted = pos + total;
                if self.out.len() >= READ_CHUNK {
                    write(wr, &self.out)
                        .await
                        .map_err(|e| RelayEnd::ClientError(e.into()))?;
                    self.out.clear();
                }
            }
            self.skip = total;
        }
        if !self.out.is_empty() {
            self.out.extend_from_slice(&buf[emitted..pos]);
            write(wr, &self.out)
                .await
                .map_err(|e| RelayEnd::ClientError(e.into()))?;
            self.out.clear();
        } else if pos > emitted {
            write(wr, &buf[emitted..pos])
                .await
                .map_err(|e| RelayEnd::ClientError(e.into()))?;
        }
        buf.advance(pos);
        Ok(())
    }

    fn ready(&mut self, body: &[u8]) {
        if let Some(&status) = body.first() {
            self.shared.status.store(status, Ordering::Relaxed);
        }
        if self.shared.refusals_len.load(Ordering::Relaxed) > 0 {
            // The batch ended without its marker failing: an earlier error
            // made the server skip it, and that error is what the client
            // saw. The refusal has nothing left to say.
            drop(self.shared.take_current());
        }
        self.shared.batches_done.fetch_add(1, Ordering::Relaxed);
        let left = self.shared.pending.fetch_sub(1, Ordering::Relaxed) - 1;
        if left <= 0 && self.shared.draining.load(Ordering::Relaxed) {
            self.shared.idle.notify_one();
        }
    }
}

/// Follows, in a masking session, which statement each server message
/// answers, and masks the results that need it.
#[derive(Debug, Default)]
struct Tracker {
    /// The masks of the result whose rows are passing.
    active: Option<ActiveMask>,
    /// The rows of the current Execute have begun (its masks are set).
    started: bool,
    /// Where a masked row is written.
    scratch: BytesMut,
    /// Where a masked cell is written.
    cell: Vec<u8>,
    /// The mask of results not tied to a judged statement.
    unknown: Option<Arc<dyn ResultMask>>,
}

impl Tracker {
    /// Whether (and up to what length) a message must be read whole.
    fn needs_body(&self, tag: u8, shared: &Shared) -> Option<usize> {
        match tag {
            b'T' | b't' | b'n' | b'E' | b'N' => Some(MAX_INSPECTED_SERVER_MESSAGE),
            b'D' if self.active.is_some() => Some(MAX_MESSAGE),
            b'D' if !self.started => {
                let q = shared.expects.lock().unwrap_or_else(|e| e.into_inner());
                matches!(q.front(), Some(Expect::Execute { mask: Some(_), .. }))
                    .then_some(MAX_MESSAGE)
            }
            _ => None,
        }
    }

    /// Moves the expectations along for one server message and says how
    /// it is rewritten.
    fn observe(
        &mut self,
        tag: u8,
        body: Option<&[u8]>,
        shared: &Shared,
    ) -> Result<Option<Rewrite>, ProtocolError> {
        let body = body.unwrap_or_default();
        if tag == b'D' && self.active.is_some() {
            // The hot path: a row of a masked result.
            return self.mask_row(body);
        }
        let mut q = shared.expects.lock().unwrap_or_else(|e| e.into_inner());
        match tag {
            b'T' => {
                let fields = mask::decode_row_description(body)
                    .ok_or_else(|| ProtocolError::malformed("RowDescription"))?;
                match q.front_mut() {
                    Some(Expect::Query(masks)) => {
                        // More results than the text had statements:
                        // fail-closed.
                        let mask = masks.front().or(self.unknown.as_ref());
                        self.active = mask.and_then(|m| activate(m, fields));
                        return Ok(self.active.as_ref().map(described));
                    }
                    Some(Expect::Describe {
                        injected: Some(slot),
                        ..
                    }) => {
                        let _ = slot.set(fields);
                        q.pop_front();
                        return Ok(Some(Rewrite::Drop));
                    }
                    Some(Expect::Describe { mask, .. }) => {
                        let told = mask
                            .as_ref()
                            .and_then(|m| activate(m, fields))
                            .map(|a| described(&a));
                        q.pop_front();
                        return Ok(told);
                    }
                    _ => {}
                }
            }
            b'n' => {
                if let Some(Expect::Describe { injected, .. }) = q.front() {
                    let own = injected.as_ref().map(|slot| slot.set(Vec::new())).is_some();
                    q.pop_front();
                    if own {
                        return Ok(Some(Rewrite::Drop));
                    }
                }
            }
            b't' => {
                if let Some(Expect::Describe {
                    injected: Some(_), ..
                }) = q.front()
                {
                    return Ok(Some(Rewrite::Drop));
                }
            }
            b'1' | b'2' | b'3' => {
                if matches!(q.front(), Some(Expect::Complete)) {
                    q.pop_front();
                }
            }
            b'D' => {
                if !self.started && self.active.is_none() {
                    self.started = true;
                    if let Some(Expect::Execute {
                        mask: Some(m),
                        fields,
                        formats,
                    }) = q.front()
                    {
                        let columns = mask::data_row_columns(body)
                            .ok_or_else(|| ProtocolError::malformed("DataRow"))?;
                        let fields = execute_fields(fields.get(), formats, columns);
                        self.active = activate(m, fields);
                    }
                }
                if self.active.is_some() {
                    return self.mask_row(body);
                }
            }
            b'C' | b'I' | b's' => {
                self.active = None;
                self.started = false;
                match q.front_mut() {
                    Some(Expect::Query(masks)) => {
                        masks.pop_front();
                    }
                    Some(Expect::Execute { .. }) => {
                        q.pop_front();
                    }
                    _ => {}
                }
            }
            b'E' | b'N' => {
                let scrub = match q.front() {
                    Some(Expect::Query(masks)) => masks.front().map(|m| m.scrub()),
                    Some(Expect::Execute { mask, .. }) => mask.as_ref().map(|m| m.scrub()),
                    _ => None,
                }
                .unwrap_or(mask::Scrub::Keep);
                if tag == b'E' {
                    self.active = None;
                    self.started = false;
                    // The server skips to the end of the batch.
                    match q.front_mut() {
                        Some(Expect::Query(masks)) => masks.clear(),
                        _ => {
                            // Everything up to Sync, Queries included: the
                            // server discards them unanswered.
                            while q.front().is_some_and(|e| !matches!(e, Expect::Ready)) {
                                q.pop_front();
                            }
                        }
                    }
                }
                if scrub != mask::Scrub::Keep {
                    let mut out = BytesMut::new();
                    mask::scrub_notice(tag, body, scrub, &mut out)
                        .ok_or_else(|| ProtocolError::malformed("ErrorResponse"))?;
                    return Ok(Some(Rewrite::With(out)));
                }
            }
            backend_tag::READY_FOR_QUERY => {
                self.active = None;
                self.started = false;
                while let Some(e) = q.pop_front() {
                    if e.is_ready() {
                        break;
                    }
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

impl Tracker {
    /// Rewrites a row of the active masked result into `scratch`.
    fn mask_row(&mut self, body: &[u8]) -> Result<Option<Rewrite>, ProtocolError> {
        let Some(a) = &self.active else {
            return Ok(None);
        };
        self.scratch.clear();
        mask::mask_data_row(body, a, &mut self.scratch, &mut self.cell)
            .ok_or_else(|| ProtocolError::malformed("DataRow"))?;
        Ok(Some(Rewrite::Scratch))
    }
}

/// The masks of a result with these columns, if any column is masked.
fn activate(mask: &Arc<dyn ResultMask>, fields: Vec<Field>) -> Option<ActiveMask> {
    let cells = mask.columns(&fields)?;
    cells
        .iter()
        .any(Option::is_some)
        .then_some(ActiveMask { fields, cells })
}

/// The RowDescription the client is told for a masked result.
fn described(active: &ActiveMask) -> Rewrite {
    let mut out = BytesMut::new();
    mask::encode_row_description(&mask::client_fields(active), &mut out);
    Rewrite::With(out)
}

/// The columns of an Execute's rows: the statement's, as described to
/// the relay, in the portal's formats (unknown columns when the
/// description is missing or disagrees with the rows).
fn execute_fields(described: Option<&Vec<Field>>, formats: &[i16], columns: usize) -> Vec<Field> {
    let unknown = |_| Field {
        name: Vec::new(),
        table_oid: 0,
        column: 0,
        type_oid: 0,
        type_len: -1,
        type_mod: -1,
        format: 0,
    };
    let mut fields = match described {
        Some(f) if f.len() == columns => f.clone(),
        _ => (0..columns).map(unknown).collect(),
    };
    for (i, f) in fields.iter_mut().enumerate() {
        f.format = mask::format_of(formats, i);
    }
    fields
}

/// The body of a server message the relay must read whole, once it is
/// all in `buf` (`None`: read more first).
fn inspected(
    buf: &[u8],
    pos: usize,
    tag: u8,
    total: usize,
    max: usize,
) -> Result<Option<&[u8]>, RelayEnd> {
    if total > max {
        return Err(RelayEnd::ServerError(ProtocolError::TooLong {
            tag,
            len: total,
            max,
        }));
    }
    Ok((buf.len() - pos >= total).then(|| &buf[pos + HEADER_LEN..pos + total]))
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::messages::error_response::{ClientError, SqlState};

    /// Records statements; refuses those that contain "drop".
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(StatementOrigin, Vec<u8>)>>);

    impl SessionHooks for Recorder {
        fn statement(
            &mut self,
            origin: StatementOrigin,
            sql: &[u8],
        ) -> Result<crate::hooks::Masks, ClientError> {
            self.0.lock().unwrap().push((origin, sql.to_vec()));
            if sql.windows(4).any(|w| w == b"drop") {
                return Err(ClientError::error(SqlState::INSUFFICIENT_PRIVILEGE, "no"));
            }
            Ok(Vec::new())
        }
        fn read_only(&mut self) -> bool {
            false
        }
    }

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn shared() -> Shared {
        Shared::new()
    }

    fn downstream<'a>(shared: &'a Shared, params: &'a mut Vec<(String, String)>) -> Downstream<'a> {
        Downstream {
            skip: 0,
            shared,
            params,
            user: "agent",
            last_tag: 0,
            tracker: None,
            out: BytesMut::new(),
        }
    }

    fn upstream<'a>(
        hooks: &'a mut Recorder,
        shared: &'a Shared,
        max_statement_len: usize,
    ) -> Upstream<'a> {
        Upstream {
            skip: 0,
            discard: 0,
            hooks,
            limits: RelayLimits { max_statement_len },
            shared,
            batches_sent: 0,
            masking: false,
            statements: HashMap::new(),
            portals: HashMap::new(),
            unknown: None,
        }
    }

    /// A reader that delivers `bytes` in pieces of `size`.
    fn chunked(bytes: &[u8], size: usize) -> tokio_test::io::Mock {
        let mut b = tokio_test::io::Builder::new();
        for piece in bytes.chunks(size) {
            b.read(piece);
        }
        b.build()
    }

    const CHUNKS: [usize; 8] = [1, 2, 3, 5, 7, 64, 4096, usize::MAX];

    #[tokio::test]
    async fn client_bytes_pass_unchanged_at_every_chunking() {
        let mut forwarded = Vec::new();
        forwarded.extend(msg(b'Q', b"select 1; select 2\0"));
        forwarded.extend(msg(b'P', b"s1\0select $1\0\0\0"));
        forwarded.extend(msg(b'B', b"\0s1\0\0\0\0\0\0\0"));
        forwarded.extend(msg(b'E', b"\0\0\0\0\0"));
        forwarded.extend(msg(b'S', b""));
        forwarded.extend(msg(b'd', &vec![b'x'; 100_000]));
        let mut input = forwarded.clone();
        input.extend(msg(b'X', b""));
        for size in CHUNKS {
            let mut hooks = Recorder::default();
            let shared = shared();
            let mut up = upstream(&mut hooks, &shared, 1 << 20);
            let mut out = Vec::new();
            let mut buf = BytesMut::new();
            let end = up
                .run(
                    &mut chunked(&input, size.min(input.len())),
                    &mut out,
                    &mut buf,
                )
                .await;
            assert!(matches!(end, RelayEnd::ClientGone), "{size}: {end:?}");
            assert!(out == forwarded, "chunks of {size}: bytes changed");
            let seen = hooks.0.into_inner().unwrap();
            assert_eq!(
                seen,
                vec![
                    (StatementOrigin::Query, b"select 1; select 2".to_vec()),
                    (StatementOrigin::Parse, b"select $1".to_vec())
                ],
                "{size}"
            );
            assert_eq!(shared.pending.load(Ordering::Relaxed), 2, "Query + Sync");
            assert!(!shared.unsynced.load(Ordering::Relaxed));
        }
    }

    #[tokio::test]
    async fn oversized_statements_and_bad_lengths_are_protocol_errors() {
        let mut hooks = Recorder::default();
        let shared = shared();
        let mut up = upstream(&mut hooks, &shared, 16);
        let input = msg(b'Q', b"select 'far too long for the limit'\0");
        let end = up
            .run(
                &mut chunked(&input, input.len()),
                &mut Vec::new(),
                &mut BytesMut::new(),
            )
            .await;
        assert!(
            matches!(end, RelayEnd::ClientError(ProtocolError::TooLong { .. })),
            "{end:?}"
        );
        let mut up = Upstream { skip: 0, ..up };
        let input = [b'S', 0, 0, 0, 1];
        let end = up
            .run(
                &mut chunked(&input, 5),
                &mut Vec::new(),
                &mut BytesMut::new(),
            )
            .await;
        assert!(
            matches!(end, RelayEnd::ClientError(ProtocolError::BadLength { .. })),
            "{end:?}"
        );
        assert!(hooks.0.into_inner().unwrap().is_empty());
    }

    #[tokio::test]
    async fn server_bytes_pass_unchanged_except_the_server_user() {
        let server_says = |user: &[u8]| -> Vec<u8> {
            let mut auth = b"session_authorization\0".to_vec();
            auth.extend_from_slice(user);
            auth.push(0);
            [
                msg(b'S', b"application_name\0psql\0"),
                msg(
                    b'T',
                    b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
                ),
                msg(b'D', &[7u8; 70_000]),
                msg(b'S', &auth),
                msg(b'Z', b"T"),
            ]
            .concat()
        };
        let input = server_says(b"app_owner");
        let expected = server_says(b"agent");
        for size in CHUNKS {
            let shared = shared();
            shared.pending.store(1, Ordering::Relaxed);
            let mut params = Vec::new();
            let mut down = downstream(&shared, &mut params);
            let mut out = Vec::new();
            let end = down
                .run(
                    &mut chunked(&input, size.min(input.len())),
                    &mut out,
                    &mut BytesMut::new(),
                )
                .await;
            assert!(matches!(end, RelayEnd::ServerGone), "{end:?}");
            assert!(out == expected, "chunks of {size}: bytes differ");
            assert_eq!(
                params,
                vec![("application_name".to_owned(), "psql".to_owned())]
            );
            assert_eq!(shared.status.load(Ordering::Relaxed), b'T');
            assert_eq!(shared.pending.load(Ordering::Relaxed), 0);
        }
    }

    #[tokio::test]
    async fn refused_statements_become_markers_and_markers_errors_become_refusals() {
        let input = [
            msg(b'Q', b"drop table t\0"),
            msg(b'P', b"s1\0select 1\0\0\0"),
            msg(b'P', b"s2\0drop table t\0\0\0"),
            msg(b'S', b""),
        ]
        .concat();
        let mut hooks = Recorder::default();
        let shared = shared();
        let mut up = upstream(&mut hooks, &shared, 1 << 20);
        let mut out = Vec::new();
        up.run(
            &mut chunked(&input, input.len()),
            &mut out,
            &mut BytesMut::new(),
        )
        .await;
        let expected = [
            marker(b'Q').to_vec(),
            msg(b'P', b"s1\0select 1\0\0\0"),
            marker(b'P').to_vec(),
            msg(b'S', b""),
        ]
        .concat();
        assert!(
            out == expected,
            "markers replace exactly the refused messages"
        );
        assert_eq!(shared.refusals_len.load(Ordering::Relaxed), 2);

        // The server fails both markers; the client sees the refusals.
        let marker_error = |extra: &str| {
            let mut e = BytesMut::new();
            ClientError::error(
                SqlState(*b"42703"),
                format!("column \"{}\" does not exist{extra}", marker_name()),
            )
            .encode(&mut e);
            e.to_vec()
        };
        let server = [
            marker_error(""),
            msg(b'Z', b"I"),
            msg(b'1', b""),
            marker_error(""),
            msg(b'Z', b"I"),
        ]
        .concat();
        let mut refusal = BytesMut::new();
        ClientError::error(SqlState::INSUFFICIENT_PRIVILEGE, "no").encode(&mut refusal);
        let expected = [
            refusal.to_vec(),
            msg(b'Z', b"I"),
            msg(b'1', b""),
            refusal.to_vec(),
            msg(b'Z', b"I"),
        ]
        .concat();
        let mut params = Vec::new();
        let mut down = downstream(&shared, &mut params);
        let mut out = Vec::new();
        down.run(&mut chunked(&server, 3), &mut out, &mut BytesMut::new())
            .await;
        assert!(out == expected, "refusals replace the markers' errors");
        assert_eq!(shared.refusals_len.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn an_earlier_error_in_the_batch_wins_over_a_refusal() {
        let shared = shared();
        shared.queue(Queued {
            batch: 1,
            error: BytesMut::from(&b"never sent"[..]),
        });
        let mut real = BytesMut::new();
        ClientError::error(SqlState(*b"23505"), "duplicate key").encode(&mut real);
        let server = [real.to_vec(), msg(b'Z', b"I")].concat();
        let mut params = Vec::new();
        let mut down = downstream(&shared, &mut params);
        let mut out = Vec::new();
        down.run(&mut chunked(&server, 5), &mut out, &mut BytesMut::new())
            .await;
        assert!(out == server);
        assert_eq!(shared.refusals_len.load(Ordering::Relaxed), 0);
    }
}
