//! What a session's judge records: each statement text as the client sent
//! it, its fingerprint, verdict and tags, and whether its results are
//! masked. A statement that can change anything (a tag outside `read`,
//! `tx`, `session`) is durable in the store before it is forwarded; when
//! the store cannot take it, it is refused (`on_failure = "refuse"`).
//!
//! This module must never record a value the client did not send or see:
//! masked results are recorded masked, and nothing of the gateway's
//! credentials reaches a record.

use crate::policy::engine::{Judged, Refusal, RefusedBy, TextShape};
use crate::policy::parse::SqlDialect;
use crate::policy::rules::Verdict;
use crate::policy::tags::{Tag, TagSet};
use crate::store::session::SessionRecorder;
use crate::store::{Kind, StatementEvent};
use sqlgate_net::parameters::Parameters;

/// Tag roots of statements that change nothing: recorded in the next
/// group.
pub(crate) const HARMLESS: &[&str] = &["read", "tx", "session"];

/// The tags of [`HARMLESS`] roots, and the tags of roles and users
/// (`dcl.*`, whose statements may carry a password), as sets: a judged
/// statement's tags are a set, and each test is then one AND.
struct TagKinds {
    harmless: TagSet,
    credential: TagSet,
}

fn tag_kinds() -> &'static TagKinds {
    static KINDS: std::sync::LazyLock<TagKinds> = std::sync::LazyLock::new(|| TagKinds {
        harmless: TagSet::all_where(|t| !prepared::changes_anything([t.name()])),
        credential: TagSet::all_where(|t| t.name().starts_with("dcl.")),
    });
    &KINDS
}

/// A wait for a text's durable records (see [`SessionLog::judged`]).
pub type Durable = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Refusal>> + Send>>;

mod credentials;
mod definitions;
mod prepared;
mod shapes;

pub(crate) use credentials::may_bind_a_secret;
pub use credentials::{loggable, shown_text};
use credentials::{names_a_credential, recorded_text};

use prepared::{Prepared, PreparedTexts};

/// One session's records (none when recording is off).
#[derive(Debug, Default)]
pub struct SessionLog {
    recorder: Option<SessionRecorder>,
    /// The last statement prepared (Parse, COM_STMT_PREPARE), until the
    /// relay says under which name it went to the server.
    last_prepared: Option<std::sync::Arc<Prepared>>,
    /// Prepared statements by the server's name or id.
    prepared: PreparedTexts,
    /// Statements' fixed fields recorded so far, by number.
    definitions: std::sync::Mutex<definitions::Definitions>,
    /// What was found once for statements of the session's repeated
    /// shapes.
    shapes: shapes::ShapeNotes,
}

impl SessionLog {
    /// Records into `recorder`.
    pub fn new(recorder: Option<SessionRecorder>) -> Self {
        SessionLog {
            recorder,
            ..SessionLog::default()
        }
    }

    /// Whether executions of prepared statements are recorded.
    pub fn records_executions(&self) -> bool {
        self.recorder.is_some()
    }

    /// The statement prepared last went to the server as `name` (a
    /// PostgreSQL statement name, a MySQL statement id); `confirmed`: the
    /// server has prepared it (else its ParseComplete will say so).
    pub fn prepared_as(&mut self, name: &[u8], confirmed: bool) {
        // A text without statements (empty, a comment) is prepared too.
        let p = self.last_prepared.take().unwrap_or_else(|| {
            std::sync::Arc::new(Prepared {
                text: String::new(),
                fingerprint: String::new(),
                tags: Vec::new(),
                rule: None,
                masked_columns: Vec::new(),
                masked: false,
                credential: false,
                changes: false,
                defined: prepared::NOT_DEFINED.into(),
            })
        });
        self.prepared.sent(name, p, confirmed);
    }

    /// Records an execution of prepared statement `name` with its bound
    /// parameters (`None`: not read), grouped with the next commit: its
    /// text was durable before it was prepared.
    ///
    /// An execution that may run a statement that can change anything —
    /// or whose text is unknown — is durable before it runs: the returned
    /// wait completes when it is (an error: it must not run). One sent
    /// while a Parse of its name is unanswered is recorded with the newest
    /// text, its origin marked unconfirmed.
    pub fn executed(&mut self, name: &[u8], parameters: Option<Parameters<'_>>) -> Option<Durable> {
        let rec = self.recorder.as_ref()?;
        let c = self.prepared.candidates(name);
        // A named statement's executions run its one text, which their
        // definition then holds; the unnamed statement is most often
        // parsed anew for each execution, with literals in its text, so
        // its executions share definitions by fingerprint and carry their
        // text (a definition per text would use up the session's).
        let fixed_text = !name.is_empty()
            && c.newest
                .as_deref()
                .is_some_and(|p| definitions::may_hold(&p.text));
        // A read of a known text whose shape this session has defined:
        // its parameters and the definition's number (and its text).
        if let Some(p) = c.newest.as_deref().filter(|_| !c.durable) {
            let origin = if c.unconfirmed {
                "execute (unconfirmed)"
            } else {
                "execute"
            };
            let parameters = parameters.filter(|_| !p.credential && rec.records_parameters());
            if let Some(d) = self.known_execution(origin, p, c.unconfirmed, fixed_text) {
                let reference = crate::store::Reference {
                    d,
                    text: (!fixed_text).then_some(p.text.as_str()),
                    literals: None,
                    parameters,
                };
                rec.reference(&reference);
                return None;
            }
        }
        let mut event = execution(
            name,
            c.newest.as_deref(),
            parameters,
            rec.records_parameters(),
        );
        if c.unconfirmed {
            event.origin = "execute (unconfirmed)".to_owned();
        }
        let durable = c.durable;
        if !durable {
            self.record(rec, &event, fixed_text);
            return None;
        }
        let wait = self.record_durable(rec, &event, fixed_text);
        let handle = rec.handle();
        Some(Box::pin(async move {
            wait.await.map_err(|e| {
                let refusal = not_recorded(
                    "execution",
                    "executions of statements that can change data are recorded before they run",
                    &e,
                );
                handle.statement(&StatementEvent {
                    refusal: Some(refusal.message.clone()),
                    verdict: refusal.verdict.as_str().to_owned(),
                    ..event
                });
                refusal
            })
        }))
    }

    /// The definition of judged statement `j`'s shape, when this session
    /// has defined it: the statement is then recorded as its text and
    /// the definition's number, without building the whole event (the
    /// common case: the same statements with new literals).
    fn known_shape(&self, origin: &str, j: &Judged) -> Option<u32> {
        let masked = j.masks.as_ref().is_some_and(masks_anything);
        let definitions = self
            .definitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        definitions.find(origin, &j.statement.fingerprint, |d| {
            d.verdict == j.decision.verdict.as_str()
                && d.masked == masked
                && d.tags
                    .iter()
                    .map(String::as_str)
                    .eq(j.tags.iter().map(|t: Tag| t.name()))
                && d.text.is_none()
                && d.template.is_none()
                && rule_is(d.rule.as_deref(), &j.decision)
                && (!masked
                    || Some(&d.masked_columns) == j.masks.as_ref().map(masked_columns).as_ref())
        })
    }

    /// The definition of an execution of `p`'s shape, when this session
    /// has defined it (see [`SessionLog::known_shape`]); remembered in
    /// `p` for its confirmed executions. `fixed_text`: the definition
    /// holds `p`'s text.
    fn known_execution(
        &self,
        origin: &str,
        p: &Prepared,
        unconfirmed: bool,
        fixed_text: bool,
    ) -> Option<u32> {
        use std::sync::atomic::Ordering;
        let remembered = p.defined.load(Ordering::Relaxed);
        if !unconfirmed && remembered != prepared::NOT_DEFINED {
            return Some(remembered);
        }
        let definitions = self
            .definitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let d = definitions.find(origin, &p.fingerprint, |d| {
            d.verdict == Verdict::Allow.as_str()
                && d.masked == p.masked
                && d.tags == p.tags
                && d.rule == p.rule
                && d.masked_columns == p.masked_columns
                && d.text.as_deref() == fixed_text.then_some(p.text.as_str())
                && d.template.is_none()
        })?;
        if !unconfirmed {
            p.defined.store(d, Ordering::Relaxed);
        }
        Some(d)
    }

    /// The body that records `event`, its definition recorded first when
    /// it is new (and the event recorded whole when that record could not
    /// be queued). `fixed_text`: see [`definitions::Definitions::encode`].
    fn statement_body(
        &self,
        rec: &SessionRecorder,
        event: &StatementEvent,
        fixed_text: bool,
    ) -> String {
        let mut definitions = self
            .definitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (new, body) = definitions.encode(event, fixed_text);
        if let Some((d, def)) = new {
            if !rec.send(Kind::Definition, &def, false) {
                definitions.forget(d);
                return serde_json::to_string(event).unwrap_or_default();
            }
        }
        body
    }

    /// Records a statement nothing waits for.
    fn record(&self, rec: &SessionRecorder, event: &StatementEvent, fixed_text: bool) {
        let body = self.statement_body(rec, event, fixed_text);
        rec.send(Kind::Statement, &body, event.refusal.is_some());
    }

    /// Records a statement that must be durable before it runs.
    fn record_durable(
        &self,
        rec: &SessionRecorder,
        event: &StatementEvent,
        fixed_text: bool,
    ) -> crate::store::session::DurableWait {
        let body = self.statement_body(rec, event, fixed_text);
        rec.durable(Kind::Statement, &body)
    }

    /// Where a held statement's approval is recorded (none when recording
    /// is off).
    pub fn handle(&self) -> Option<crate::store::session::SessionHandle> {
        self.recorder.as_ref().map(SessionRecorder::handle)
    }

    /// The session's id in the store.
    pub fn id(&self) -> Option<&str> {
        self.recorder.as_ref().map(SessionRecorder::id)
    }

    /// Records the server connection the session got.
    pub fn connected(&self, server_id: u32, application: Option<&str>) {
        if let Some(rec) = &self.recorder {
            rec.connected(&crate::store::Connected {
                server_id,
                application: application.map(str::to_owned),
            });
        }
    }

    /// Records the session's end and why.
    pub fn ended(&mut self, reason: &str) {
        if let Some(rec) = &mut self.recorder {
            rec.end(reason);
        }
    }

    /// Where the relay reports outcomes (none when recording is off).
    pub fn outcome_sink(&self) -> Option<std::sync::Arc<dyn sqlgate_net::outcome::OutcomeSink>> {
        let inner = self.recorder.as_ref()?.outcome_recorder();
        Some(std::sync::Arc::new(LogSink {
            inner,
            prepared: self.prepared.clone(),
        }))
    }

    /// Records a fastpath FunctionCall (a function called by OID, with no
    /// text): refused, or durable before it runs like any code.
    pub fn function_call(&self, refused: Option<&Refusal>) -> Option<Durable> {
        const TEXT: &str = "(fastpath FunctionCall: a function called by OID)";
        let rec = self.recorder.as_ref()?;
        if let Some(r) = refused {
            rec.statement(&refused_event(
                SqlDialect::Postgres,
                "functioncall",
                TEXT,
                r,
            ));
            return None;
        }
        let event = StatementEvent {
            origin: "functioncall".to_owned(),
            text: TEXT.to_owned(),
            fingerprint: TEXT.to_owned(),
            verdict: Verdict::Allow.as_str().to_owned(),
            tags: vec![Tag::CodeFunction.name().to_owned()],
            refusal: None,
            masked: false,
            parameters: None,
            rule: None,
            masked_columns: Vec::new(),
        };
        let wait = rec.statement_durable(&event);
        let handle = rec.handle();
        Some(Box::pin(async move {
            wait.await.map_err(|e| {
                let refusal =
                    not_recorded("call", "calls of code are recorded before they run", &e);
                handle.statement(&refused_event(
                    SqlDialect::Postgres,
                    "functioncall",
                    TEXT,
                    &refusal,
                ));
                refusal
            })
        }))
    }

    /// Records a judged text. Its statements that can change anything
    /// must be durable before they run: the returned wait completes when
    /// they are (the relay awaits it before forwarding the text; an
    /// error refuses the whole text, and the refusal is recorded).
    pub fn judged(
        &mut self,
        dialect: SqlDialect,
        origin: &'static str,
        text: &str,
        judged: &Result<Vec<Judged>, Refusal>,
        shape: Option<TextShape<'_>>,
    ) -> Option<Durable> {
        let rec = self.recorder.as_ref()?;
        let prepares = matches!(origin, "parse" | "prepare");
        let shape = shape.filter(|_| !prepares);
        let kinds = tag_kinds();
        match judged {
            Ok(list) => {
                let mut waits = Vec::new();
                if prepares {
                    self.last_prepared = None;
                }
                for (i, j) in list.iter().enumerate() {
                    let statement = j.statement.excerpt(text);
                    let dcl = j.tags.meets(kinds.credential);
                    let durable = !j.tags.within(kinds.harmless);
                    let masked = j.masks.as_ref().is_some_and(masks_anything);
                    // A statement of a repeated shape: its words away from
                    // its literals were scanned once, and its definition
                    // found once.
                    let note = shape.and_then(|s| {
                        let range = &j.statement.bytes;
                        // The spans are the text's: only for a statement
                        // that is exactly its range of the text.
                        text.get(range.clone())?;
                        if shapes::straddles(s.literals, range) {
                            return None;
                        }
                        let piece = shapes::Piece {
                            text: statement,
                            start: range.start,
                            spans: shapes::within(s.literals, range),
                        };
                        let at = self
                            .shapes
                            .note(s.id, i, origin, || credentials::credential_outside(&piece));
                        let credential = self.shapes.at(at).credential_outside
                            || credentials::credential_at_literals(&piece);
                        Some((at, credential, piece))
                    });
                    let credential = dcl
                        || match &note {
                            Some((_, credential, _)) => *credential,
                            None => names_a_credential(statement),
                        };
                    let noted = note.as_ref().map(|&(at, _, _)| at);
                    let piece = note.map(|(_, _, piece)| piece);
                    // A statement of a shape already defined in this
                    // session: its text and the definition's number.
                    if !prepares && !credential {
                        let remembered = noted
                            .and_then(|at| self.shapes.at(at).defined.as_ref())
                            .filter(|d| {
                                !masked
                                    && d.verdict == j.decision.verdict
                                    && d.tags == j.tags
                                    && rule_is(d.rule.as_deref(), &j.decision)
                            })
                            .map(|d| d.d);
                        let found = remembered.or_else(|| self.known_shape(origin, j));
                        if let Some(d) = found {
                            // Found by its fingerprint: kept for the next
                            // text of the shape (masked ones are not).
                            if let Some(at) = noted.filter(|_| remembered.is_none() && !masked) {
                                self.shapes.at(at).defined = Some(shapes::Defined {
                                    d,
                                    verdict: j.decision.verdict,
                                    tags: j.tags,
                                    rule: deciding_rule(&j.decision),
                                    template: None,
                                });
                            }
                            // Its literals only, when the shape's template
                            // fits it.
                            let templated =
                                noted
                                    .zip(piece)
                                    .filter(|_| !masked)
                                    .and_then(|(at, piece)| {
                                        template(
                                            &mut self.shapes,
                                            at,
                                            &self.definitions,
                                            rec,
                                            origin,
                                            j,
                                            &piece,
                                        )
                                    });
                            let reference = crate::store::Reference {
                                d: templated.unwrap_or(d),
                                text: templated.is_none().then_some(statement),
                                literals: templated.and(piece).map(|p| crate::store::Literals {
                                    text,
                                    spans: p.spans,
                                }),
                                parameters: None,
                            };
                            if durable {
                                waits.push(rec.reference_durable(&reference));
                            } else {
                                rec.reference(&reference);
                            }
                            continue;
                        }
                    }
                    let event = StatementEvent {
                        origin: origin.to_owned(),
                        text: recorded_text(dialect, statement, credential),
                        fingerprint: String::from(&*j.statement.fingerprint),
                        // `review`: held for approval (its decision follows).
                        verdict: j.decision.verdict.as_str().to_owned(),
                        tags: j.tags.iter().map(|t| t.name().to_owned()).collect(),
                        refusal: None,
                        masked: j.masks.as_ref().is_some_and(masks_anything),
                        parameters: None,
                        rule: deciding_rule(&j.decision),
                        masked_columns: j.masks.as_ref().map(masked_columns).unwrap_or_default(),
                    };
                    if prepares {
                        self.last_prepared = Some(std::sync::Arc::new(Prepared {
                            text: event.text.clone(),
                            fingerprint: event.fingerprint.clone(),
                            tags: event.tags.clone(),
                            rule: event.rule.clone(),
                            masked_columns: event.masked_columns.clone(),
                            masked: event.masked,
                            // Decided once, not at each execution.
                            credential: credential || may_bind_a_secret(statement),
                            changes: durable,
                            defined: prepared::NOT_DEFINED.into(),
                        }));
                    }
                    if durable {
                        let body = self.statement_body(rec, &event, false);
                        waits.push(rec.durable(Kind::Statement, &body));
                    } else {
                        self.record(rec, &event, false);
                    }
                }
                if waits.is_empty() {
                    return None;
                }
                let handle = rec.handle();
                let (origin, text) = (origin.to_owned(), text.to_string());
                Some(Box::pin(async move {
                    for wait in waits {
                        if let Err(e) = wait.await {
                            let refusal = not_recorded(
                                "statement",
                                "statements that can change data are recorded before they run",
                                &e,
                            );
                            handle.statement(&refused_event(dialect, &origin, &text, &refusal));
                            return Err(refusal);
                        }
                    }
                    Ok(())
                }))
            }
            Err(refusal) => {
                rec.statement(&refused_event(dialect, origin, text, refusal));
                None
            }
        }
    }
}

/// The number of the template definition of the statement noted at `at`
/// (its definition found) when the template fits `statement`: made from
/// this statement, and recorded, when there is none yet and the shape
/// came again ([`shapes::ShapeNotes::may_make_template`]); one the session
/// made before for the same fields is used again when it fits.
#[allow(clippy::too_many_arguments)]
fn template(
    notes: &mut shapes::ShapeNotes,
    at: usize,
    definitions: &std::sync::Mutex<definitions::Definitions>,
    rec: &SessionRecorder,
    origin: &str,
    j: &Judged,
    statement: &shapes::Piece<'_>,
) -> Option<u32> {
    let may_make = notes.may_make_template(at);
    let defined = notes.at(at).defined.as_mut()?;
    if let Some(t) = &defined.template {
        return t.fits(statement).then_some(t.d);
    }
    if !may_make {
        return None;
    }
    let rule = defined.rule.clone();
    let mut template = shapes::Template::of(statement)?;
    let (text, literals) = template.parts();
    let mut definitions = definitions
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let verdict = j.decision.verdict.as_str();
    // A template this session made before for the same fields that fits
    // (its note was let go): the same definition again.
    let made = definitions.find(origin, &j.statement.fingerprint, |d| {
        d.template
            .as_deref()
            .is_some_and(|t| shapes::fits(t, d.literals.iter().map(|&[a, b]| a..b), statement))
            && d.verdict == verdict
            && !d.masked
            && d.masked_columns.is_empty()
            && d.rule == rule
            && d.tags
                .iter()
                .map(String::as_str)
                .eq(j.tags.iter().map(|t: Tag| t.name()))
    });
    if let Some(d) = made {
        template.d = d;
        if let Some(defined) = notes.at(at).defined.as_mut() {
            defined.template = Some(template);
        }
        return Some(d);
    }
    let def = definitions.add(crate::store::Definition {
        d: 0,
        origin: origin.to_owned(),
        fingerprint: String::from(&*j.statement.fingerprint),
        verdict: verdict.to_owned(),
        tags: j.tags.iter().map(|t| t.name().to_owned()).collect(),
        masked: false,
        rule,
        masked_columns: Vec::new(),
        text: None,
        template: Some(text.to_owned()),
        literals: literals.iter().map(|l| [l.start, l.end]).collect(),
    });
    let Some(def) = def else {
        // The session keeps no more definitions: no more templates.
        notes.no_more_templates();
        return None;
    };
    let body = serde_json::to_string(&def).unwrap_or_default();
    if !rec.send(Kind::Definition, &body, false) {
        definitions.forget(def.d);
        return None;
    }
    template.d = def.d;
    notes.made_template();
    if let Some(defined) = notes.at(at).defined.as_mut() {
        defined.template = Some(template);
    }
    Some(def.d)
}

/// The record of an execution of prepared statement `name` (`p`: its
/// text, when known).
fn execution(
    name: &[u8],
    p: Option<&Prepared>,
    parameters: Option<Parameters<'_>>,
    with_parameters: bool,
) -> StatementEvent {
    match p {
        Some(p) => StatementEvent {
            origin: "execute".to_owned(),
            text: p.text.clone(),
            fingerprint: p.fingerprint.clone(),
            verdict: Verdict::Allow.as_str().to_owned(),
            tags: p.tags.clone(),
            refusal: None,
            masked: p.masked,
            rule: p.rule.clone(),
            masked_columns: p.masked_columns.clone(),
            parameters: if p.credential || !with_parameters {
                None
            } else {
                parameters.map(Parameters::to_vec)
            },
        },
        None => StatementEvent {
            origin: "execute".to_owned(),
            text: format!(
                "(prepared statement {} whose text was not kept)",
                String::from_utf8_lossy(name)
            ),
            fingerprint: String::new(),
            verdict: Verdict::Allow.as_str().to_owned(),
            tags: Vec::new(),
            refusal: None,
            masked: false,
            parameters: None,
            rule: None,
            masked_columns: Vec::new(),
        },
    }
}

/// A session's outcomes to its recorder; the server's confirmations of
/// prepared statements to the session's texts.
#[derive(Debug)]
struct LogSink {
    inner: crate::store::session::OutcomeRecorder,
    prepared: PreparedTexts,
}

impl sqlgate_net::outcome::OutcomeSink for LogSink {
    fn outcome(&self, outcome: &sqlgate_net::outcome::Outcome<'_>) {
        self.inner.outcome(outcome);
    }

    fn sample_limits(&self) -> sqlgate_net::outcome::SampleLimits {
        self.inner.sample_limits()
    }

    fn traffic(&self, from_client: u64, to_client: u64) {
        self.inner.traffic(from_client, to_client);
    }

    fn statement_prepared(&self, name: &[u8], ok: bool) {
        self.prepared.answered(name, ok);
    }

    fn unnamed_statement_dropped(&self) {
        self.prepared.unnamed_dropped();
    }
}

/// The refusal of `what` (a statement, an execution, a call) whose
/// record could not be made durable before it ran.
fn not_recorded(what: &str, why: &str, e: &crate::store::StoreError) -> Refusal {
    Refusal {
        verdict: Verdict::Deny,
        by: RefusedBy::Recording,
        message: format!("sqlgate could not record this {what} before running it: {e}"),
        detail: why.to_owned(),
        hint: "retry when the recording store is back (the gateway's log and /metrics say why it fails)".to_owned(),
        position: 1,
        rule: None,
        tags: crate::policy::tags::TagSet::EMPTY,
    }
}

/// The record of a refused text.
fn refused_event(
    dialect: SqlDialect,
    origin: &str,
    text: &str,
    refusal: &Refusal,
) -> StatementEvent {
    StatementEvent {
        origin: origin.to_owned(),
        text: recorded_text(dialect, text, names_a_credential(text)),
        fingerprint: crate::policy::fingerprint::of(dialect, text).key,
        verdict: refusal.verdict.as_str().to_owned(),
        tags: Vec::new(),
        refusal: Some(refusal.message.clone()),
        masked: false,
        parameters: None,
        rule: None,
        masked_columns: Vec::new(),
    }
}

/// The rule that decided a verdict, as `rule (entry)`.
fn deciding_rule(d: &crate::policy::rules::Decision) -> Option<String> {
    let (_, v) = d.deciding.as_ref()?;
    Some(match &v.rule {
        Some(rule) => format!("{rule} ({})", v.entry),
        None => v.entry.to_string(),
    })
}

/// Whether `recorded` is what [`deciding_rule`] gives for `d`, without
/// building it.
fn rule_is(recorded: Option<&str>, d: &crate::policy::rules::Decision) -> bool {
    match (recorded, d.deciding.as_ref()) {
        (None, None) => true,
        (Some(r), Some((_, v))) => match &v.rule {
            Some(rule) => {
                r.strip_prefix(&**rule)
                    .and_then(|r| r.strip_prefix(" ("))
                    .and_then(|r| r.strip_suffix(')'))
                    == Some(&*v.entry)
            }
            None => r == &*v.entry,
        },
        _ => false,
    }
}

/// The result columns a statement's plan masks, as `column (rule)`.
fn masked_columns(m: &crate::policy::mask::result::StatementMasks) -> Vec<String> {
    use crate::policy::mask::rules::ColumnPlan;
    let Some(plan) = &m.plan else {
        return Vec::new();
    };
    plan.iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let name = m.names.get(i).map_or("?", String::as_str);
            match c {
                ColumnPlan::Clear => None,
                ColumnPlan::Masked { rule, .. } => Some(format!(
                    "{name} ({})",
                    m.rules.get(*rule).map_or("?", |r| r.name.as_str())
                )),
                _ => Some(format!("{name} (redacted)")),
            }
        })
        .collect()
}

/// Whether a statement's results are masked at all (a masking session
/// gives every statement masks; most mask nothing).
fn masks_anything(m: &crate::policy::mask::result::StatementMasks) -> bool {
    use crate::policy::mask::rules::ColumnPlan;
    m.reads_masked
        || m.named.is_some()
        || m.plan
            .as_ref()
            .is_some_and(|p| p.iter().any(|c| *c != ColumnPlan::Clear))
}
