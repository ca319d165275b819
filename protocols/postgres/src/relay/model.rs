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

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;

use crate::error::ProtocolError;
use crate::hooks::{Effect, Planned};
use crate::mask::{Field, ResultMask};

/// The columns of a prepared statement, filled in when the server answers
/// the Describe the relay sends after its Parse.
pub(super) type FieldsSlot = Arc<OnceLock<Vec<Field>>>;

/// How the rows of a statement are masked.
#[derive(Debug, Clone, Default)]
pub(super) enum Plan {
    /// Not followed: a session without masking.
    #[default]
    Clear,
    /// Masked by this.
    Mask(Arc<dyn ResultMask>),
    /// The rows of this portal (SQL `FETCH`): masked by the portal's plan
    /// when the rows arrive.
    Cursor(Vec<u8>),
    /// The rows of this prepared statement (SQL `EXECUTE`): masked by its
    /// plan when the rows arrive.
    Prepared(Vec<u8>),
}

/// A statement or portal name as the server keys it: its tables keep 63
/// bytes of a name (`NAMEDATALEN - 1`), so longer names that share those
/// are one name to the server, and must be to the relay.
pub(super) fn key(name: &[u8]) -> Vec<u8> {
    name[..name.len().min(63)].to_vec()
}

/// A prepared statement as the server has it.
#[derive(Debug, Clone, Default)]
pub(super) struct Statement {
    pub plan: Plan,
    pub fields: FieldsSlot,
    /// What it does to the server's names when it completes.
    pub effect: Effect,
}

impl Statement {
    /// A statement of a masking session, as the judge planned it.
    pub fn planned(p: &Planned) -> Self {
        Statement {
            plan: plan_of(p),
            fields: FieldsSlot::default(),
            effect: p.effect.clone(),
        }
    }
}

/// A portal as the server has it.
#[derive(Debug, Clone, Default)]
pub(super) struct Portal {
    pub statement: Statement,
    pub formats: Vec<i16>,
    /// An SQL cursor `WITH HOLD`: survives its transaction's commit.
    pub hold: bool,
    /// A held cursor whose transaction committed (until then, its
    /// transaction's failure drops it like any portal).
    pub committed: bool,
}

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
        fields: Option<Vec<Field>>,
        formats: Vec<i16>,
    },
    /// A ReadyForQuery: the batch is over.
    Ready,
}

/// The model; see the module docs.
#[derive(Debug)]
pub(super) struct ServerModel {
    queue: VecDeque<Sent>,
    phase: Phase,
    /// The server discards messages until Sync.
    skipping: bool,
    /// Names are followed (masking sessions).
    masking: bool,
    statements: HashMap<Vec<u8>, Statement>,
    portals: HashMap<Vec<u8>, Portal>,
    /// The mask of results the relay cannot tie to a judged statement.
    unknown: Option<Arc<dyn ResultMask>>,
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
            phase: Phase::Start,
            skipping: false,
            masking,
            statements: HashMap::new(),
            portals: HashMap::new(),
            unknown,
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
        self.weight += sent.weight();
        self.queue.push_back(sent);
    }

    /// Takes the front entry off the queue.
    fn take_front(&mut self) -> Option<Sent> {
        let front = self.queue.pop_front();
        if let Some(f) = &front {
            self.weight -= f.weight();
        }
        front
    }

    /// A statement's statement plan by name, as the server has it now
    /// (fail-closed for names the relay does not know).
    fn statement(&self, name: &[u8]) -> Statement {
        match self.statements.get(name) {
            Some(s) => s.clone(),
            None => self.unknown_statement(),
        }
    }

    fn unknown_statement(&self) -> Statement {
        Statement {
            plan: self.unknown_plan(),
            ..Statement::default()
        }
    }

    fn unknown_plan(&self) -> Plan {
        match (&self.unknown, self.masking) {
            (Some(m), true) => Plan::Mask(m.clone()),
            _ => Plan::Clear,
        }
    }

    fn portal(&self, name: &[u8]) -> Portal {
        match self.portals.get(name) {
            Some(p) => p.clone(),
            None => Portal {
                statement: self.unknown_statement(),
                formats: Vec::new(),
                hold: false,
                committed: false,
            },
        }
    }

    /// The mask a plan stands for now.
    fn resolve(&self, plan: &Plan) -> Option<Arc<dyn ResultMask>> {
        match plan {
            Plan::Clear => None,
            Plan::Mask(m) => Some(m.clone()),
            Plan::Cursor(name) => match self.portals.get(name).map(|p| &p.statement.plan) {
                Some(Plan::Mask(m)) => Some(m.clone()),
                _ => self.unknown.clone(),
            },
            Plan::Prepared(name) => match self.statements.get(name).map(|s| &s.plan) {
                Some(Plan::Mask(m)) => Some(m.clone()),
                _ => self.unknown.clone(),
            },
        }
    }

    /// The mask of the result now passing (for scrubbing notices and
    /// errors), if any.
    pub fn current_mask(&self) -> Option<Arc<dyn ResultMask>> {
        match self.queue.front()? {
            Sent::Query { statements, .. } => match statements.front() {
                Some(p) => self.resolve(&plan_of(p)),
                None => self.unknown.clone().filter(|_| self.masking),
            },
            Sent::Execute { portal } => self.resolve(&self.portal(portal).statement.plan),
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
                        Some(plan) => self.resolve(&plan),
                        // More results than the text had statements.
                        None => self.unknown.clone().filter(|_| self.masking),
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
                self.completed(done, body);
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
                if let Some(Sent::Parse {
                    name, statement, ..
                }) = self.pop()
                {
                    if self.masking {
                        self.statements.insert(name, statement);
                    }
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
                    if self.masking {
                        let statement = self.statement(&statement);
                        self.portals.insert(
                            portal,
                            Portal {
                                statement,
                                formats,
                                hold: false,
                                committed: false,
                            },
                        );
                    }
                }
                Answer::Pass
            }
            (Sent::Close { .. }, Phase::Start, b'3') => {
                if let Some(Sent::Close { portal, name }) = self.pop() {
                    if portal {
                        self.portals.remove(&name);
                    } else {
                        self.statements.remove(&name);
                    }
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
                    self.portal(&name).statement.plan
                } else {
                    self.statement(&name).plan
                };
                Answer::Described {
                    mask: self.resolve(&plan),
                    rows: false,
                }
            }

            (Sent::Execute { portal }, Phase::Start, b'D') => {
                let name = portal.clone();
                self.phase = Phase::Rows;
                let portal = self.portal(&name);
                Answer::ExecuteRows {
                    mask: self.resolve(&portal.statement.plan),
                    fields: portal.statement.fields.get().cloned(),
                    formats: portal.formats,
                }
            }
            (Sent::Execute { .. }, Phase::Rows, b'D') => Answer::Pass,
            (Sent::Execute { .. }, Phase::Start | Phase::Rows | Phase::CopyOut, b'C' | b's') => {
                let Some(Sent::Execute { portal }) = self.pop() else {
                    return Err(desync("(internal)"));
                };
                if tag == b'C' {
                    let done = self.portals.get(&portal).map(|p| p.statement.clone());
                    self.completed(done, body);
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
                    self.statements.remove(&b""[..]);
                }
                refusal.map_or(Answer::Pass, Answer::Refusal)
            }
            // A failed Bind of the unnamed portal may have dropped the old
            // one first: forget it either way (fail-closed).
            Some(Sent::Bind { portal, .. }) if portal.is_empty() => {
                self.portals.remove(&portal);
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

    /// A statement completed with this CommandComplete: what it did to
    /// the server's names.
    fn completed(&mut self, statement: Option<Statement>, body: &[u8]) {
        if !self.masking {
            return;
        }
        let (effect, plan) = match statement {
            Some(s) => (Some(s.effect), s.plan),
            None => (None, self.unknown_plan()),
        };
        let tag = body.split(|&b| b == 0).next().unwrap_or_default();
        match tag {
            b"COMMIT" | b"PREPARE TRANSACTION" => self.commit(),
            // Also ROLLBACK TO SAVEPOINT, which drops only the portals
            // made since: any survivor is unknown to the relay from now.
            b"ROLLBACK" => self.portals.clear(),
            // A procedure may commit inside: its portals end.
            b"CALL" => self.portals.retain(|_, p| p.hold && p.committed),
            b"DISCARD ALL" => {
                self.portals.clear();
                self.statements.clear();
            }
            b"DEALLOCATE ALL" => self.statements.clear(),
            b"DEALLOCATE" => match effect {
                Some(Effect::Deallocate(Some(name))) => {
                    self.statements.remove(&name);
                }
                _ => self.statements.clear(),
            },
            b"PREPARE" => match effect {
                // A statement of SQL's: its plan is the relay's unknown.
                Some(Effect::Prepare(name)) => {
                    let unknown = self.unknown_statement();
                    self.statements.insert(name, unknown);
                }
                _ => self.statements.clear(),
            },
            b"CLOSE CURSOR" => match effect {
                Some(Effect::Close(Some(name))) => {
                    self.portals.remove(&name);
                }
                _ => self.portals.clear(),
            },
            b"CLOSE CURSOR ALL" => self.portals.clear(),
            b"DECLARE CURSOR" => match effect {
                Some(Effect::Declare { name, hold, binary }) => {
                    self.portals.insert(
                        name,
                        Portal {
                            statement: Statement {
                                plan,
                                ..Statement::default()
                            },
                            formats: if binary { vec![1] } else { Vec::new() },
                            hold,
                            committed: false,
                        },
                    );
                }
                // A cursor the relay cannot name: whatever it had under
                // that name is gone or stale.
                _ => self.portals.clear(),
            },
            _ => {}
        }
    }

    /// The transaction committed: its held cursors live on, every other
    /// portal ends.
    fn commit(&mut self) {
        self.portals.retain(|_, p| p.hold);
        for p in self.portals.values_mut() {
            p.committed = true;
        }
    }

    /// A ReadyForQuery: at transaction end the server drops every portal
    /// but the cursors declared `WITH HOLD`.
    fn ready(&mut self, body: &[u8]) {
        self.phase = Phase::Start;
        if let Some(&status) = body.first() {
            self.status = status;
            if status == crate::messages::TX_IDLE {
                // An implicit transaction ended: committed, unless an
                // error rolled it back (and its held cursors with it).
                if self.failed {
                    self.portals.retain(|_, p| p.hold && p.committed);
                } else {
                    self.commit();
                }
            }
        }
        self.failed = false;
        self.settle();
    }
}

/// The plan of a statement of a Query.
fn plan_of(p: &Planned) -> Plan {
    match &p.effect {
        Effect::Fetch(name) => Plan::Cursor(name.clone()),
        Effect::Execute(name) => Plan::Prepared(name.clone()),
        _ => Plan::Mask(p.mask.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(sent: Vec<Sent>) -> ServerModel {
        let mut m = ServerModel::new(false, None);
        for s in sent {
            m.send(s);
        }
        m
    }

    fn answers(m: &mut ServerModel, tags: &[u8]) -> Result<(), ProtocolError> {
        for &t in tags {
            let body: &[u8] = if t == b'Z' { b"I" } else { b"" };
            m.answer(t, body)?;
        }
        Ok(())
    }

    fn execute() -> Sent {
        Sent::Execute { portal: Vec::new() }
    }

    #[test]
    fn libpq_copy_in_sends_a_sync_the_server_ignores() {
        // PQexecParams("COPY ... FROM STDIN"): Execute and Sync at once,
        // then the data, CopyDone and a second Sync.
        let sent = || {
            vec![
                execute(),
                Sent::Sync,
                Sent::CopyData,
                Sent::CopyDone,
                Sent::Sync,
            ]
        };
        let mut m = model(sent());
        answers(&mut m, b"GCZ").unwrap();
        assert!(m.idle());
        // A bad row: the error ends the copy; the last Sync ends the skip.
        let mut m = model(sent());
        answers(&mut m, b"GEZ").unwrap();
        assert!(m.idle());
    }

    #[test]
    fn what_cannot_be_placed_ends_the_session() {
        // Where a data error struck decides whether this Sync was read
        // inside the copy: the model does not guess.
        let mut m = model(vec![
            execute(),
            Sent::CopyData,
            Sent::Sync,
            Sent::CopyData,
            Sent::CopyDone,
        ]);
        assert!(answers(&mut m, b"GE").is_err());
        // A Query sent inside a copy is read by the copy's error, or not.
        let mut m = model(vec![
            execute(),
            Sent::Query {
                statements: VecDeque::new(),
                refusal: None,
            },
        ]);
        assert!(answers(&mut m, b"GE").is_err());
        // Rows nobody asked for.
        let mut m = model(vec![Sent::Sync]);
        assert!(answers(&mut m, b"D").is_err());
        let mut m = model(vec![]);
        assert!(answers(&mut m, b"Z").is_err());
    }

    #[test]
    fn messages_after_an_error_get_no_answer_until_sync() {
        let mut m = model(vec![Sent::Describe {
            portal: false,
            name: b"nope".to_vec(),
            own: None,
        }]);
        answers(&mut m, b"E").unwrap();
        // Sent after the error: discarded by the server, not queued.
        m.send(Sent::Query {
            statements: VecDeque::new(),
            refusal: Some(BytesMut::from(&b"refused"[..])),
        });
        m.send(execute());
        assert!(m.idle());
        m.send(Sent::Sync);
        m.send(execute());
        answers(&mut m, b"ZDC").unwrap();
        assert!(m.idle());
    }
}
