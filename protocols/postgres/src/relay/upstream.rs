//! Client → server: frames the client's messages, hands statement texts to
//! the judge, replaces refused messages by markers, and queues in the
//! model every message the server will answer.
//!
//! Why here: the model must hear of a message before the server can
//! answer it, so each entry is queued before its bytes are written. This
//! side must never change the model's maps: only the server's answers do.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::marker::{bind_marker, marker};
use super::model::Sent;
use super::names::{key, server_name, Plan, Statement};
use super::shared::{write, RelayEnd, RelayLimits, Shared, MAX_QUEUED, READ_CHUNK};
use crate::error::ProtocolError;
use crate::frame::{pass_over, peek_header, HEADER_LEN};
use crate::hooks::{Masks, SessionHooks, StatementOrigin, Verdict};
use crate::mask;
use crate::messages::error_response::ClientError;
use crate::messages::{frontend_tag, query};

/// Longest message of any kind (PostgreSQL's own limit is 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;
/// Longest Bind a masking session holds whole (its result formats come
/// last, after the parameters).
const MAX_HELD_BIND: usize = 64 << 20;
/// Longest Bind a recording session reads whole for its parameters (a
/// longer one is recorded without them).
const MAX_RECORDED_BIND: usize = 1 << 20;

mod held;

/// Client → server.
pub(super) struct Upstream<'a> {
    /// Bytes of a passed-through message still to forward.
    skip: usize,
    /// Bytes of a refused message still to drop.
    discard: usize,
    hooks: &'a mut dyn SessionHooks,
    limits: RelayLimits,
    shared: &'a Shared,
    /// Results may be masked: names are followed.
    masking: bool,
    /// The last message was CopyData (a run is queued once).
    copy_run: bool,
    /// A statement judged and waiting (its record becoming durable)
    /// before it is forwarded: its verdict, once the wait is over, for
    /// the scan that meets it again.
    waiting: Option<sqlgate_net::verdict::Wait>,
    resumed: Option<Result<Masks, ClientError>>,
    judged: Option<Masks>,
    /// What a long text's judging waits for, and whether it has been
    /// awaited (the scan that meets the text again judges it).
    ahead: Option<sqlgate_net::ahead::Ahead>,
    ahead_done: bool,
    /// Bytes read from the client.
    pub received: u64,
    /// Binds are reported to the hooks (for the recording).
    records_binds: bool,
    /// No extended batch or COPY is open (the last request-ending message
    /// was a Query, a Sync or a FunctionCall). Once the session is ending,
    /// nothing that starts new work is forwarded, so that a client
    /// pipelining requests cannot keep an ending session busy for ever;
    /// an open batch gets a Flush of the relay's own, so that the server
    /// answers what it was sent.
    boundary: bool,
}

enum Scan {
    /// Forward `0..n` and read more.
    Forward(usize),
    /// Forward `0..n`; then wait until the model's queue has room.
    Full(usize),
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
    /// Forward `0..before`, then await the judged statement's wait and
    /// scan again from it.
    Wait(usize),
    /// Forward `0..before`, then await what the hooks asked for before
    /// the long text there is judged ([`Upstream::ahead`]), and scan again
    /// from it.
    Ahead(usize),
    /// Forward `0..n` (then a Flush of the relay's own when `flush`: a
    /// batch left open is answered), then read nothing more: the session
    /// is ending and the next message would start new work.
    Drained { upto: usize, flush: bool },
}

impl<'a> Upstream<'a> {
    pub fn new(
        hooks: &'a mut dyn SessionHooks,
        limits: RelayLimits,
        shared: &'a Shared,
        masking: bool,
    ) -> Self {
        let records_binds = hooks.records_binds();
        Upstream {
            skip: 0,
            discard: 0,
            hooks,
            limits,
            shared,
            masking,
            copy_run: false,
            boundary: true,
            waiting: None,
            resumed: None,
            judged: None,
            ahead: None,
            ahead_done: false,
            received: 0,
            records_binds,
        }
    }

    pub async fn run<R, W>(&mut self, rd: &mut R, wr: &mut W, buf: &mut BytesMut) -> RelayEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let scan = match self.scan(buf) {
                Ok(s) => s,
                Err(e) => return RelayEnd::ClientError(e),
            };
            let (n, terminate, full) = match scan {
                Scan::Forward(n) => (n, false, false),
                Scan::Full(n) => (n, false, true),
                Scan::Terminate(n) => (n, true, false),
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
                Scan::Wait(before) => {
                    if let Err(e) = write(wr, &buf[..before]).await {
                        return RelayEnd::ServerError(e.into());
                    }
                    buf.advance(before);
                    if let Err(end) = self.hold(rd, buf).await {
                        return end;
                    }
                    continue;
                }
                Scan::Ahead(before) => {
                    if let Err(e) = write(wr, &buf[..before]).await {
                        return RelayEnd::ServerError(e.into());
                    }
                    buf.advance(before);
                    if let Some(ahead) = self.ahead.take() {
                        ahead.await;
                    }
                    self.ahead_done = true;
                    continue;
                }
                Scan::Drained { upto: n, flush } => {
                    let sent = async {
                        wr.write_all(&buf[..n]).await?;
                        if flush {
                            wr.write_all(&[frontend_tag::FLUSH, 0, 0, 0, 4]).await?;
                        }
                        wr.flush().await
                    };
                    if let Err(e) = sent.await {
                        return RelayEnd::ServerError(e.into());
                    }
                    buf.advance(n);
                    // The relay ends once the server has answered what it
                    // was sent (its loop watches for that).
                    return std::future::pending().await;
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
            if full {
                // Not a lost wake-up: `Notify` keeps one permit.
                self.shared.room.notified().await;
                continue;
            }
            buf.reserve(READ_CHUNK);
            match rd.read_buf(buf).await {
                Ok(n) if n > 0 => self.received += n as u64,
                Ok(_) => {
                    return if buf.is_empty() && self.skip == 0 {
                        RelayEnd::ClientGone
                    } else {
                        RelayEnd::ClientError(ProtocolError::Truncated)
                    }
                }
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
            if pass_over(&mut self.skip, &mut pos, buf.len()) {
                return Ok(Scan::Forward(pos));
            }
            let Some((tag, total)) = peek_header(&buf[pos..], MAX_MESSAGE)? else {
                return Ok(Scan::Forward(pos));
            };
            // An ending session forwards nothing that starts new work;
            // only a Sync that closes a batch already sent (so that the
            // server answers it and the session can end).
            if starts_request(tag)
                && (tag != frontend_tag::SYNC || self.boundary)
                && self
                    .shared
                    .draining
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                return Ok(Scan::Drained {
                    upto: pos,
                    flush: !self.boundary,
                });
            }
            if self.shared.model().len() >= MAX_QUEUED {
                return Ok(Scan::Full(pos));
            }
            if !self.masking && matches!(tag, b'B' | b'E') && self.hooks.masking_now_applies() {
                return Err(ProtocolError::Unexpected {
                    tag,
                    during:
                        "after a policy reload made masking rules apply to this session: reconnect",
                });
            }
            // Messages the relay reads whole: statements for the hook, and
            // in a masking session the names that say which result is which.
            let whole = match tag {
                frontend_tag::QUERY | frontend_tag::PARSE => Some(self.limits.max_statement_len),
                b'B' if self.masking => Some(MAX_HELD_BIND),
                b'B' if self.records_binds && total <= MAX_RECORDED_BIND => Some(total),
                b'E' if self.masking => Some(self.limits.max_statement_len),
                // Which of its answers a Describe gets depends on its kind.
                b'D' | b'C' => Some(self.limits.max_statement_len),
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
            // (Taken back when the message is met again after a wait.)
            let (boundary, copy_run_before) = (self.boundary, self.copy_run);
            match tag {
                frontend_tag::QUERY | frontend_tag::SYNC | frontend_tag::FUNCTION_CALL => {
                    self.boundary = true
                }
                // An extended batch, or a COPY (its closing Sync, when the
                // copy ran in one, ends the request).
                b'P' | b'B' | b'E' | b'D' | b'C' | b'c' | b'f' => self.boundary = false,
                _ => {}
            }
            // Flush (never queued, ignored in a copy) does not break a run.
            let copy_run = match tag {
                frontend_tag::FLUSH => self.copy_run,
                _ => std::mem::replace(&mut self.copy_run, tag == b'd'),
            };
            let body = &buf[pos + HEADER_LEN..(pos + total).min(buf.len())];
            match tag {
                frontend_tag::QUERY | frontend_tag::PARSE | frontend_tag::FUNCTION_CALL => {
                    if let Some(scan) = self.statement(tag, body, pos, total)? {
                        if matches!(scan, Scan::Wait(_) | Scan::Ahead(_)) {
                            // Not forwarded yet: while it waits, an ending
                            // session sees the batch as it was.
                            (self.boundary, self.copy_run) = (boundary, copy_run_before);
                        }
                        return Ok(scan);
                    }
                }
                frontend_tag::SYNC => {
                    self.shared.unsynced.store(false, Ordering::Relaxed);
                    self.send(Sent::Sync);
                }
                frontend_tag::TERMINATE => return Ok(Scan::Terminate(pos)),
                b'B' | b'E' | b'D' | b'C' => {
                    self.shared.unsynced.store(true, Ordering::Relaxed);
                    if tag == b'B' && self.records_binds {
                        match self.resumed.take() {
                            // Met again after its record's wait.
                            Some(Ok(_)) => {}
                            // Refused in place: a marker that fails as
                            // the Bind would, answered with the refusal.
                            Some(Err(error)) => {
                                let mut refusal = BytesMut::new();
                                error.encode(&mut refusal);
                                let (name, marker) = bind_marker();
                                self.send(Sent::Parse {
                                    name,
                                    statement: Statement::default(),
                                    refusal: Some(refusal),
                                });
                                return Ok(Scan::Refuse {
                                    before: pos,
                                    len: total,
                                    marker,
                                });
                            }
                            None => {
                                // An execution that can change anything is
                                // durable before it is forwarded; a held
                                // one waits for its approval.
                                if let Some(ticket) =
                                    self.bound(buf, body, pos, total).into_ticket()
                                {
                                    self.wait_for(ticket);
                                    return Ok(Scan::Wait(pos));
                                }
                            }
                        }
                    }
                    let sent = if self.masking {
                        extended(tag, body)?
                    } else {
                        unnamed(tag, body)
                    };
                    self.send(sent);
                }
                frontend_tag::FLUSH => self.shared.unsynced.store(true, Ordering::Relaxed),
                b'd' if !copy_run => self.send(Sent::CopyData),
                b'c' => self.send(Sent::CopyDone),
                b'f' => self.send(Sent::CopyFail),
                _ => {}
            }
            self.skip = total;
        }
    }

    /// Reports a Bind to the hooks: its statement and, when it is read
    /// whole, its parameters; whether it may run now.
    fn bound(&mut self, buf: &[u8], body: &[u8], pos: usize, total: usize) -> Verdict<()> {
        let whole = buf.len() - pos >= total;
        match whole.then(|| mask::bind_parameters(body)).flatten() {
            Some((statement, values)) => self.hooks.bound(
                server_name(statement),
                Some(sqlgate_net::parameters::Parameters::Lent(&values)),
            ),
            None => {
                // The statement's name leads the body.
                let name = body.iter().position(|&b| b == 0).and_then(|p| {
                    let rest = &body[p + 1..];
                    rest.iter().position(|&b| b == 0).map(|q| &rest[..q])
                });
                // Unread: a name no statement has.
                let unknown: &[u8] = b"\0(not read)";
                self.hooks.bound(server_name(name.unwrap_or(unknown)), None)
            }
        }
    }

    fn send(&self, sent: Sent) {
        self.shared.model().send(sent);
    }

    /// A Query, Parse or FunctionCall: judged, then queued; a refused one
    /// becomes a marker.
    fn statement(
        &mut self,
        tag: u8,
        body: &[u8],
        pos: usize,
        total: usize,
    ) -> Result<Option<Scan>, ProtocolError> {
        // A Parse's name, as the server keys it (read once with its text).
        let mut name = Vec::new();
        if tag == frontend_tag::PARSE {
            self.shared.unsynced.store(true, Ordering::Relaxed);
            name = key(query::parse_text(body)?.0);
        }
        let verdict = match self.resumed.take() {
            // Met again after its wait: judged already.
            Some(verdict) => verdict,
            None => {
                let (origin, sql) = match tag {
                    frontend_tag::QUERY => (StatementOrigin::Query, query::query_text(body)?),
                    frontend_tag::PARSE => (StatementOrigin::Parse, query::parse_text(body)?.1),
                    // Judged before its body is read: nothing in it says
                    // more than "a function by OID".
                    _ => (StatementOrigin::FunctionCall, &b""[..]),
                };
                if sql.len() >= sqlgate_net::ahead::LONG_TEXT
                    && !std::mem::take(&mut self.ahead_done)
                {
                    if let Some(ahead) = self.hooks.ahead(sql) {
                        self.ahead = Some(ahead);
                        return Ok(Some(Scan::Ahead(pos)));
                    }
                }
                let verdict = self.hooks.statement(origin, sql);
                match verdict {
                    Verdict::Allow(masks) => Ok(masks),
                    Verdict::Refuse(refusal) => Err(ClientError::from(refusal)),
                    Verdict::Hold { ticket, then } => {
                        self.wait_for(ticket);
                        self.judged = Some(then);
                        return Ok(Some(Scan::Wait(pos)));
                    }
                }
            }
        };
        let plans = match verdict {
            Ok(plans) => plans,
            Err(refusal) => {
                let mut error = BytesMut::new();
                refusal.encode(&mut error);
                let refusal = Some(error);
                self.send(match tag {
                    frontend_tag::QUERY => Sent::Query {
                        statements: VecDeque::new(),
                        refusal,
                    },
                    frontend_tag::PARSE => Sent::Parse {
                        name,
                        statement: Statement::default(),
                        refusal,
                    },
                    _ => Sent::FunctionCall { refusal },
                });
                let kind = match tag {
                    frontend_tag::PARSE => frontend_tag::PARSE,
                    _ => frontend_tag::QUERY,
                };
                return Ok(Some(Scan::Refuse {
                    before: pos,
                    len: total,
                    marker: marker(kind),
                }));
            }
        };
        if tag == frontend_tag::PARSE {
            self.hooks.parsed_as(&name);
        }
        match tag {
            frontend_tag::QUERY => self.send(Sent::Query {
                statements: plans.into(),
                refusal: None,
            }),
            frontend_tag::PARSE if self.masking => {
                let statement = match plans.first() {
                    Some(p) => Statement::planned(p),
                    None => self.unknown_statement(),
                };
                // The relay describes every statement it parses, so that
                // Execute without a Describe has its columns.
                let own = statement.fields.clone();
                let describe = mask::describe_statement(&name);
                self.send(Sent::Parse {
                    name: name.clone(),
                    statement,
                    refusal: None,
                });
                self.send(Sent::Describe {
                    portal: false,
                    name,
                    own: Some(own),
                });
                return Ok(Some(Scan::Inject {
                    upto: pos + total,
                    extra: describe,
                }));
            }
            frontend_tag::PARSE => self.send(Sent::Parse {
                name,
                statement: Statement::default(),
                refusal: None,
            }),
            _ => self.send(Sent::FunctionCall { refusal: None }),
        }
        Ok(None)
    }

    /// The statement of a Parse the judge gave no plan for (an empty
    /// text): fail-closed.
    fn unknown_statement(&mut self) -> Statement {
        Statement {
            plan: match self.hooks.unknown_result() {
                Some(m) => Plan::Mask(m),
                None => Plan::Clear,
            },
            ..Statement::default()
        }
    }
}

/// Bind, Execute, Describe or Close of a masking session, with its names.
/// A body that does not decode ends the session: the relay cannot know
/// what the server would make of it.
fn extended(tag: u8, body: &[u8]) -> Result<Sent, ProtocolError> {
    let malformed = || ProtocolError::malformed("extended-protocol");
    Ok(match tag {
        b'B' => {
            let b = mask::decode_bind(body).ok_or_else(malformed)?;
            Sent::Bind {
                portal: key(&b.portal),
                statement: key(&b.statement),
                formats: b.formats,
            }
        }
        b'E' => Sent::Execute {
            portal: key(mask::decode_execute(body).ok_or_else(malformed)?),
        },
        _ => {
            let (kind, name) = mask::decode_target(body).ok_or_else(malformed)?;
            let portal = match kind {
                b'P' => true,
                b'S' => false,
                _ => return Err(malformed()),
            };
            let name = key(name);
            if tag == b'D' {
                Sent::Describe {
                    portal,
                    name,
                    own: None,
                }
            } else {
                Sent::Close { portal, name }
            }
        }
    })
}

/// The same outside masking sessions, where names are not followed.
fn unnamed(tag: u8, body: &[u8]) -> Sent {
    match tag {
        b'B' => Sent::Bind {
            portal: Vec::new(),
            statement: Vec::new(),
            formats: Vec::new(),
        },
        b'E' => Sent::Execute { portal: Vec::new() },
        b'D' => Sent::Describe {
            portal: body.first() == Some(&b'P'),
            name: Vec::new(),
            own: None,
        },
        _ => Sent::Close {
            portal: true,
            name: Vec::new(),
        },
    }
}

/// Whether a client message begins a request the server will work on
/// (what an ending session no longer forwards); copy data, Flush and
/// Terminate do not.
fn starts_request(tag: u8) -> bool {
    matches!(
        tag,
        frontend_tag::QUERY
            | frontend_tag::PARSE
            | frontend_tag::FUNCTION_CALL
            | b'B'
            | b'E'
            | b'D'
            | b'C'
            | frontend_tag::SYNC
    )
}
