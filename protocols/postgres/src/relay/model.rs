//! The relay's model of what the server will do with every message the
//! client sent: which response answers which message, what the server's
//! prepared statements and portals are, and when it discards messages.
//!
//! Why: refusals are swapped in by the message they answer, and masks are
//! applied by the statement a result belongs to. Wherever this model
//! drifts from the server's own state, the gateway would swap the wrong
//! error or mask the wrong result (or none). So the model follows the
//! server's *answers*, never the client's requests:
//!
//! - every message the server answers is queued when it is forwarded
//!   ([`Sent`]) and leaves the queue when its last response arrives;
//! - an entry changes the maps only when the server confirms it
//!   (ParseComplete, BindComplete, CloseComplete, a statement's
//!   CommandComplete, ReadyForQuery's transaction status);
//! - after an ErrorResponse to an extended-protocol message the server
//!   discards everything up to Sync — simple Queries and FunctionCalls
//!   too, which then get no answer at all — and so does the model;
//! - during COPY FROM STDIN the server ignores Sync and Flush and ends the
//!   copy at CopyDone or CopyFail; a message stream the model cannot place
//!   exactly (a Sync between copy data, another message inside a copy) is
//!   an error ([`ProtocolError::Desync`]).
//!
//! Every server message is checked against what the entry it answers
//! allows. A message the model did not expect is such an error, and the
//! session ends: the model is either exact or gone, never approximately
//! right. This module must never guess.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::BytesMut;

use super::names::{plan_of, FieldsSlot, Names, Statement};
use crate::error::ProtocolError;
use crate::hooks::Planned;
use crate::mask::ResultMask;

/// A message forwarded to the server that the server will answer (or
/// that changes how it reads others).
#[derive(Debug)]
pub(super) enum Sent {
    /// A simple Query: its statements' plans, in order.
    Query {
        statements: VecDeque<Planned>,
        refusal: Option<BytesMut>,
    },
    FunctionCall {
        refusal: Option<BytesMut>,
    },
    /// A Parse (a refused one went out as a marker for the unnamed
    /// statement).
    Parse {
        name: Vec<u8>,
        statement: Statement,
        refusal: Option<BytesMut>,
    },
    Bind {
        portal: Vec<u8>,
        statement: Vec<u8>,
        formats: Vec<i16>,
    },
    Describe {
        portal: bool,
        name: Vec<u8>,
        /// Sent by the relay itself: the answer fills this slot and is
        /// not forwarded.
        own: Option<FieldsSlot>,
    },
    Execute {
        portal: Vec<u8>,
    },
    Close {
        portal: bool,
        name: Vec<u8>,
    },
    Sync,
    /// A run of CopyData messages.
    CopyData,
    CopyDone,
    CopyFail,
}

impl Sent {
    fn is_copy(&self) -> bool {
        matches!(self, Sent::CopyData | Sent::CopyDone | Sent::CopyFail)
    }
}

/// Where in its response the front entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Nothing of this statement's response yet.
    #[default]
    Start,
    /// RowDescription (Query) or the first DataRow (Execute) seen.
    Rows,
    /// ParameterDescription of a Describe of a statement seen.
    Parameters,
    /// COPY FROM STDIN: the server reads CopyData.
    CopyIn,
    /// COPY TO STDOUT: the server sends CopyData.
    CopyOut,
    /// A Query's error: only ReadyForQuery is left.
    Failed,
}

/// How a Parse the client sent ended, as the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseEnd {
    /// A Parse the relay forwarded: prepared (`ok`) under `name`, or
    /// failed or skipped (a failed Parse of the unnamed statement dropped
    /// it).
    Answered {
        /// The statement's name, as the server keys it.
        name: Vec<u8>,
        /// ParseComplete.
        ok: bool,
    },
    /// A refused Parse's marker: the unnamed statement is gone.
    UnnamedDropped,
}

/// What a server message means, for the downstream side.
#[derive(Debug)]
pub(super) enum Answer {
    /// Forward it as is.
    Pass,
    /// Forward this instead (a refusal in place of its marker's error).
    Refusal(BytesMut),
    /// The answer to the relay's own Describe: drop it.
    Own,
    /// A RowDescription of a result (Query: `rows` follow) or a Describe:
    /// the client is told the columns under this mask (`None`: not
    /// masked).
    Described {
        mask: Option<Arc<dyn ResultMask>>,
        rows: bool,
    },
    /// The first DataRow of an Execute: the rows are masked by this, with
    /// the statement's described columns in the portal's formats.
    ExecuteRows {
        mask: Option<Arc<dyn ResultMask>>,
        /// (Shared, not copied: most executions only read the names.)
        fields: FieldsSlot,
        formats: Vec<i16>,
    },
    /// A ReadyForQuery: the batch is over.
    Ready,
}

/// The model; see the module docs.
#[derive(Debug)]
pub(super) struct ServerModel {
    queue: VecDeque<Sent>,
    /// When each request awaiting its ReadyForQuery (a Query, a Sync, a
    /// FunctionCall) was forwarded, oldest first (only when timed).
    started: Option<VecDeque<std::time::Instant>>,
    /// How long the last request that ended took.
    pub(super) took: Option<std::time::Duration>,
    phase: Phase,
    /// The server discards messages until Sync.
    skipping: bool,
    /// Parses that left the queue, not yet taken (noted only when
    /// someone takes them: `note_parses`).
    parses: Vec<ParseEnd>,
    note_parses: bool,
    /// The server's prepared statements and portals (masking sessions).
    names: Names,
    /// Transaction status of the last ReadyForQuery.
    status: u8,
    /// An error since the last ReadyForQuery: an implicit transaction
    /// ending now rolled back.
    failed: bool,
    /// Entries plus the statements of queued Queries: what `MAX_QUEUED`
    /// bounds.
    weight: usize,
}

impl Sent {
    /// What this entry holds, for the bound on the queue.
    fn weight(&self) -> usize {
        match self {
            Sent::Query { statements, .. } => 1 + statements.len(),
            _ => 1,
        }
    }
}

impl ServerModel {
    pub fn new(masking: bool, unknown: Option<Arc<dyn ResultMask>>) -> Self {
        ServerModel {
            queue: VecDeque::new(),
            started: None,
            took: None,
            phase: Phase::Start,
            skipping: false,
            parses: Vec::new(),
            note_parses: false,
            names: Names::new(masking, unknown),
            status: crate::messages::TX_IDLE,
            failed: false,
            weight: 0,
        }
    }

    /// What the server has still to answer: entries, and the statements
    /// of queued Queries.
    pub fn len(&self) -> usize {
        self.weight
    }

    /// The server owes nothing.
    pub fn idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Transaction status of the last ReadyForQuery.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// A message is being forwarded. Messages the server will discard
    /// unanswered (after an error, before the next Sync) are not queued.
    pub fn send(&mut self, sent: Sent) {
        let sync_queued = || self.queue.iter().any(|s| matches!(s, Sent::Sync));
        if self.skipping && !matches!(sent, Sent::Sync) && !sync_queued() {
            return;
        }
        if self.queue.is_empty() && sent.is_copy() {
            return;
        }
        if let Some(started) = &mut self.started {
            if matches!(
                sent,
                Sent::Query { .. } | Sent::Sync | Sent::FunctionCall { .. }
            ) {
                started.push_back(std::time::Instant::now());
            }
        }
        self.weight += sent.weight();
        self.queue.push_back(sent);
    }

    /// Takes the front entry off the queue (a Parse leaving it is noted
    /// for [`ServerModel::take_parses`]: failed or skipped unless its
    /// ParseComplete says otherwise).
    fn take_front(&mut self) -> Option<Sent> {
        let front = self.queue.pop_front();
        if let Some(f) = &front {
            self.weight -= f.weight();
            if let (true, Sent::Parse { name, refusal, .. }) = (self.note_parses, f) {
                self.parses.push(match refusal {
                    // Its marker went out for the unnamed statement.
                    Some(_) => ParseEnd::UnnamedDropped,
                    None => ParseEnd::Answered {
                        name: name.clone(),
                        ok: false,
                    },
                });
            }
        }
        front
    }

    /// Notes how each Parse ends, for [`ServerModel::take_parses`] (whose
    /// caller must take them after every answer).
    pub fn note_parses(mut self) -> Self {
        self.note_parses = true;
        self
    }

    /// Times each request from its forwarding to its ReadyForQuery
    /// ([`ServerModel::took`]).
    pub fn timed(mut self) -> Self {
        self.started = Some(VecDeque::new());
        self
    }

    /// How the Parses that left the queue since the last call ended, in
    /// the order the client sent them.
    pub fn take_parses(&mut self) -> Vec<ParseEnd> {
        std::mem::take(&mut self.parses)
    }

    /// The mask of the result now passing (for scrubbing notices and
    /// errors), if any.
    pub fn current_mask(&self) -> Option<Arc<dyn ResultMask>> {
        match self.queue.front()? {
            Sent::Query { statements, .. } => match statements.front() {
                Some(p) => self.names.resolve(&plan_of(p)),
                None => self.names.unknown_result(),
            },
            Sent::Execute { portal } => self
                .names
                .resolve(&self.names.portal(portal).statement.plan),
            _ => None,
        }
    }

    /// One server message (not NoticeResponse, NotificationResponse or
    /// ParameterStatus, which answer nothing).
    pub fn answer(&mut self, tag: u8, body: &[u8]) -> Result<Answer, ProtocolError> {
        let desync = |reason| ProtocolError::Desync {
            tag: tag as char,
            reason,
        };
        let Some(front) = self.queue.front_mut() else {
            // A FATAL error the server sends before closing answers nothing.
            return match tag {
                b'E' => Ok(Answer::Pass),
                _ => Err(desync("while the server owed nothing")),
            };
        };
        let answer = match (front, self.phase, tag) {
            // COPY FROM STDIN in progress: only its end.
            (_, Phase::CopyIn, b'C') => {
                self.end_copy_in(true).map_err(desync)?;
                return self.answer(tag, body);
            }
            (_, Phase::CopyIn, b'E') => {
                self.end_copy_in(false).map_err(desync)?;
                return self.answer(tag, body);
            }
            (_, Phase::CopyIn, _) => return Err(desync("during COPY FROM STDIN")),
            (_, Phase::CopyOut, b'd' | b'c') => Answer::Pass,
            (Sent::Query { .. } | Sent::Execute { .. }, Phase::Start, b'G') => {
                self.phase = Phase::CopyIn;
                Answer::Pass
            }
            (Sent::Query { .. } | Sent::Execute { .. }, Phase::Start, b'H') => {
                self.phase = Phase::CopyOut;
                Answer::Pass
            }

            (Sent::Query { statements, .. }, Phase::Start, b'T') => {
                self.phase = Phase::Rows;
                let plan = statements.front().map(plan_of);
                Answer::Described {
                    mask: match plan {
                        Some(plan) => self.names.resolve(&plan),
                        // More results than the text had statements.
                        None => self.names.unknown_result(),
                    },
                    rows: true,
                }
            }
            (Sent::Query { .. }, Phase::Rows, b'D') => Answer::Pass,
            (Sent::Query { statements, .. }, Phase::Start | Phase::Rows | Phase::CopyOut, b'C') => {
                let done = statements.pop_front().map(|p| Statement::planned(&p));
                if done.is_some() {
                    self.weight -= 1;
                }
                self.phase = Phase::Start;
                self.names.completed(done, body);
                Answer::Pass
            }
            (Sent::Query { .. }, Phase::Start, b'I') => Answer::Pass,
            (
                Sent::Query {
                    refusal,
                    statements,
                },
                Phase::Start | Phase::Rows | Phase::CopyOut,
                b'E',
            ) => {
                let refusal = refusal.take();
                let left = std::mem::take(statements).len();
                self.weight -= left;
                self.phase = Phase::Failed;
                self.failed = true;
                refusal.map_or(Answer::Pass, Answer::Refusal)
            }
            (Sent::Query { .. }, _, b'Z') => {
                self.take_front();
                self.ready(body);
                Answer::Ready
            }

            (Sent::FunctionCall { .. }, Phase::Start, b'V') => {
                self.phase = Phase::Rows;
                Answer::Pass
            }
            (Sent::FunctionCall { refusal }, Phase::Start | Phase::Rows, b'E') => {
                let refusal = refusal.take();
                self.phase = Phase::Failed;
                self.failed = true;
                refusal.map_or(Answer::Pass, Answer::Refusal)
            }
            (Sent::FunctionCall { .. }, _, b'Z') => {
                self.take_front();
                self.ready(body);
                Answer::Ready
            }

            (Sent::Parse { .. }, Phase::Start, b'1') => {
                let noted = self.parses.len();
                if let Some(Sent::Parse {
                    name, statement, ..
                }) = self.pop()
                {
                    if let Some(ParseEnd::Answered { ok, .. }) = self.parses.get_mut(noted) {
                        *ok = true;
                    }
                    self.names.parsed(name, statement);
                }
                Answer::Pass
            }
            (Sent::Bind { .. }, Phase::Start, b'2') => {
                if let Some(Sent::Bind {
                    portal,
                    statement,
                    formats,
                }) = self.pop()
                {
                    self.names.bound(portal, &statement, formats);
                }
                Answer::Pass
            }
            (Sent::Close { .. }, Phase::Start, b'3') => {
                if let Some(Sent::Close { portal, name }) = self.pop() {
                    self.names.closed(portal, &name);
                }
                Answer::Pass
            }

            (
                Sent::Describe {
                    portal: false, own, ..
                },
                Phase::Start,
                b't',
            ) => {
                let own = own.is_some();
                self.phase = Phase::Parameters;
                if own {
                    Answer::Own
                } else {
                    Answer::Pass
                }
            }
            (Sent::Describe { portal, .. }, phase, b'T' | b'n')
                if (*portal && phase == Phase::Start)
                    || (!*portal && phase == Phase::Parameters) =>
            {
                let Some(Sent::Describe { portal, name, own }) = self.pop() else {
                    return Err(desync("(internal)"));
                };
                if let Some(slot) = own {
                    let fields = match tag {
                        b'T' => crate::mask::decode_row_description(body)
                            .ok_or(desync("that does not decode"))?,
                        _ => Vec::new(),
                    };
                    let _ = slot.set(fields);
                    return Ok(Answer::Own);
                }
                if tag == b'n' {
                    return Ok(Answer::Pass);
                }
                let plan = if portal {
                    self.names.portal(&name).statement.plan
                } else {
                    self.names.statement(&name).plan
                };
                Answer::Described {
                    mask: self.names.resolve(&plan),
                    rows: false,
                }
            }

            (Sent::Execute { portal }, Phase::Start, b'D') => {
                let name = portal.clone();
                self.phase = Phase::Rows;
                let portal = self.names.portal(&name);
                Answer::ExecuteRows {
                    mask: self.names.resolve(&portal.statement.plan),
                    fields: portal.statement.fields.clone(),
                    formats: portal.formats,
                }
            }
            (Sent::Execute { .. }, Phase::Rows, b'D') => Answer::Pass,
            (Sent::Execute { .. }, Phase::Start | Phase::Rows | Phase::CopyOut, b'C' | b's') => {
                let Some(Sent::Execute { portal }) = self.pop() else {
                    return Err(desync("(internal)"));
                };
                if tag == b'C' {
                    let done = self.names.executed(&portal);
                    self.names.completed(done, body);
                }
                Answer::Pass
            }
            (Sent::Execute { .. }, Phase::Start, b'I') => {
                self.pop();
                Answer::Pass
            }

            // The implicit transaction's commit at Sync failed.
            (Sent::Sync, Phase::Start, b'E') => {
                self.failed = true;
                Answer::Pass
            }
            (Sent::Sync, Phase::Start, b'Z') => {
                self.take_front();
                self.skipping = false;
                self.ready(body);
                Answer::Ready
            }

            (
                Sent::Parse { .. }
                | Sent::Bind { .. }
                | Sent::Describe { .. }
                | Sent::Execute { .. }
                | Sent::Close { .. },
                _,
                b'E',
            ) => self.extended_error(),

            _ => return Err(desync("that does not answer the message the server was at")),
        };
        Ok(answer)
    }

    /// Pops the front entry (its response is complete) and drops what the
    /// server will pass over silently.
    fn pop(&mut self) -> Option<Sent> {
        self.phase = Phase::Start;
        let front = self.take_front();
        self.settle();
        front
    }

    /// Drops entries the server answers with nothing: everything before
    /// Sync while it skips, copy messages outside a copy.
    fn settle(&mut self) {
        while let Some(front) = self.queue.front() {
            let silent = front.is_copy() || (self.skipping && !matches!(front, Sent::Sync));
            if !silent {
                break;
            }
            self.take_front();
        }
    }

    /// An ErrorResponse to an extended-protocol message: the message
    /// failed and the server skips to Sync.
    fn extended_error(&mut self) -> Answer {
        let failed = self.take_front();
        self.phase = Phase::Start;
        self.skipping = true;
        self.failed = true;
        let answer = match failed {
            // The server drops the unnamed statement before parsing
            // (a refused Parse went out as a marker for it).
            Some(Sent::Parse { name, refusal, .. }) => {
                if name.is_empty() || refusal.is_some() {
                    self.names.unnamed_statement_dropped();
                }
                refusal.map_or(Answer::Pass, Answer::Refusal)
            }
            // A failed Bind of the unnamed portal may have dropped the old
            // one first: forget it either way (fail-closed).
            Some(Sent::Bind { portal, .. }) if portal.is_empty() => {
                self.names.unnamed_portal_dropped();
                Answer::Pass
            }
            _ => Answer::Pass,
        };
        self.settle();
        answer
    }

    /// The COPY FROM STDIN of the front entry has ended (`complete`: by
    /// CommandComplete, else by an error). Consumes the messages the copy
    /// read, or reports what the model cannot place.
    fn end_copy_in(&mut self, complete: bool) -> Result<(), &'static str> {
        self.phase = Phase::Start;
        // The messages after the COPY's own, up to its end.
        let mut end = None;
        let mut data_seen = false;
        for (i, s) in self.queue.iter().enumerate().skip(1) {
            match s {
                Sent::CopyData => data_seen = true,
                Sent::Sync if data_seen && !complete => {
                    // Whether the server read this Sync inside the copy
                    // (ignored) or after its error (a real Sync) depends
                    // on where in the data the error struck.
                    return Err("after a Sync between copy data");
                }
                Sent::Sync => {}
                Sent::CopyDone | Sent::CopyFail => {
                    end = Some(i);
                    break;
                }
                _ => return Err("after a message other than copy data inside a COPY"),
            }
        }
        match (end, complete) {
            (Some(i), true) if matches!(self.queue.get(i), Some(Sent::CopyDone)) => {
                self.weight -= i;
                self.queue.drain(1..=i);
            }
            (_, true) => return Err("before the client ended its copy data"),
            (Some(i), false) => {
                self.weight -= i;
                self.queue.drain(1..=i);
            }
            (None, false) => {
                let n = self.queue.len();
                self.weight -= n - 1;
                self.queue.drain(1..n);
            }
        }
        Ok(())
    }

    /// A ReadyForQuery: at transaction end the server drops every portal
    /// but the cursors declared `WITH HOLD`.
    fn ready(&mut self, body: &[u8]) {
        self.phase = Phase::Start;
        if let Some(started) = self.started.as_mut() {
            // Requests that left the queue unanswered (discarded after an
            // error, a Sync inside a COPY) are older than this one: their
            // starts go first.
            let pending = self
                .queue
                .iter()
                .filter(|s| {
                    matches!(
                        s,
                        Sent::Query { .. } | Sent::Sync | Sent::FunctionCall { .. }
                    )
                })
                .count();
            while started.len() > pending + 1 {
                started.pop_front();
            }
            if let Some(start) = started.pop_front() {
                self.took = Some(start.elapsed());
            }
        }
        if let Some(&status) = body.first() {
            self.status = status;
            if status == crate::messages::TX_IDLE {
                // An implicit transaction ended: committed, unless an
                // error rolled it back (and its held cursors with it).
                self.names.transaction_ended(self.failed);
            }
        }
        self.failed = false;
        self.settle();
    }
}
