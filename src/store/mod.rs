//! The recording store: every session's statements, verdicts and outcomes,
//! kept so that a person can replay what an agent did and an auditor can
//! prove the record was not edited afterwards (`chain`).
//!
//! One [`Store`] interface, one writer: records are appended by a thread
//! of their own ([`writer`]) that owns the store's connection and commits
//! in groups; the relays never wait on it except for statements that can
//! change something, which are durable before they are forwarded. The
//! embedded default is SQLite ([`sqlite`]: WAL, `synchronous = FULL`).
//!
//! This module must never store a secret: records carry what clients sent
//! and saw (masked), never a password, key or hash of one.

pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod config;
mod encode;
mod line;
mod mailbox;
mod packed;
pub mod postgres;
pub mod session;
pub mod sqlite;
pub mod table;
pub mod writer;

use serde::{Deserialize, Serialize};

/// What kind of record a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A session began.
    SessionStart,
    /// Its server connection was handed over.
    Connected,
    /// A statement was judged (and, if allowed, forwarded).
    Statement,
    /// What the server made of a statement (in the order it answered).
    Outcome,
    /// A held statement's approval request: made, then decided.
    Approval,
    /// A session ended.
    SessionEnd,
    /// A statement's fixed fields, numbered in its session, that its
    /// statements reference (`recording::definitions`); readers get the
    /// statements whole ([`events`]).
    Definition,
    /// Several events of one session (statements, outcomes, its server
    /// connection) stored as one record: one line each, `kind`, a tab,
    /// its time, a tab, the event's JSON (`line.rs`; see [`events`]).
    Events,
}

impl Kind {
    /// Its name in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SessionStart => "session_start",
            Kind::Connected => "connected",
            Kind::Statement => "statement",
            Kind::Outcome => "outcome",
            Kind::Approval => "approval",
            Kind::SessionEnd => "session_end",
            Kind::Definition => "definition",
            Kind::Events => "events",
        }
    }

    /// From its name in the store.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "session_start" => Kind::SessionStart,
            "connected" => Kind::Connected,
            "statement" => Kind::Statement,
            "outcome" => Kind::Outcome,
            "approval" => Kind::Approval,
            "session_end" => Kind::SessionEnd,
            "definition" => Kind::Definition,
            "events" => Kind::Events,
            _ => return None,
        })
    }

    /// A stored record's kind and body as read back. A kind the store
    /// never writes is shown in the body, so that its hash (which covers
    /// the kind) does not match and `audit verify` reports the record as
    /// edited, where reading it as some known kind could verify.
    pub fn read(kind: &str, body: String) -> (Kind, String) {
        match Kind::parse(kind) {
            Some(k) => (k, body),
            None => (
                Kind::Statement,
                format!("(a record of an unknown kind {kind:?}) {body}"),
            ),
        }
    }
}

/// A session's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStart {
    /// The gateway instance that served it.
    pub instance: String,
    /// The gateway user.
    pub user: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// How they authenticated.
    pub auth: String,
    /// The client's address.
    pub client: String,
    /// Whether the client connection was encrypted.
    pub tls: bool,
    /// The target.
    pub target: String,
    /// The protocol (`postgres`, `mysql`).
    pub protocol: String,
}

/// A judged statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEvent {
    /// Where the text came from (query, parse, startup, ...).
    #[serde(default)]
    pub origin: String,
    /// The statement's text (a statement that references a definition
    /// with a text leaves it out: it is the definition's).
    #[serde(default)]
    pub text: String,
    /// Its fingerprint (literals out: `policy::fingerprint`).
    #[serde(default)]
    pub fingerprint: String,
    /// `allow`, `deny` or `review`.
    #[serde(default)]
    pub verdict: String,
    /// Its tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The refusal's message, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Whether its results are masked for this identity.
    #[serde(default)]
    pub masked: bool,
    /// An execution's bound parameter values (`None`: NULL), when
    /// recorded (`[recording] parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<Option<String>>>,
    /// The policy rule (and its entry) that decided the verdict, when one
    /// did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The result columns masked for this identity, as `column (rule)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_columns: Vec<String>,
}

/// A statement's fixed fields, numbered within its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// Its number in the session.
    pub d: u32,
    /// Where the text came from (query, parse, execute, ...).
    pub origin: String,
    /// The fingerprint (literals out).
    pub fingerprint: String,
    /// `allow`, `deny` or `review`.
    pub verdict: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether its results are masked for this identity.
    pub masked: bool,
    /// The rule (and its entry) that decided the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The result columns masked, as `column (rule)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_columns: Vec<String>,
    /// The text every statement referencing it ran, when that is fixed:
    /// the executions of one prepared statement (their references then
    /// leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A template's text (not `text`: a reader that predates templates
    /// then shows no text rather than this one): a statement of a
    /// session's repeated shape references it with its own literals, and
    /// its text is this with each of `literals`' byte ranges replaced by
    /// its literal in turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Where the template's literals are (byte ranges, in order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub literals: Vec<[usize; 2]>,
}

/// A statement that references its definition: its text (unless the
/// definition has it), and its bound parameters when recorded.
#[derive(Debug, Serialize)]
pub struct Reference<'a> {
    /// The definition's number.
    pub d: u32,
    /// The text as recorded (`None`: the definition's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    /// The statement's literals, when its definition is a template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub literals: Option<Literals<'a>>,
    /// Bound parameter values, when recorded.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "parameter_values"
    )]
    pub parameters: Option<sqlgate_net::parameters::Parameters<'a>>,
}

/// A statement's literals: the pieces of `text` at `spans` (ranges of
/// it, in order), serialized as a JSON array of strings.
#[derive(Debug, Clone, Copy)]
pub struct Literals<'a> {
    pub text: &'a str,
    pub spans: &'a [std::ops::Range<usize>],
}

impl Literals<'_> {
    /// Each literal (a span that is not a range of the text, which the
    /// recording never makes, reads as empty).
    pub fn each(&self) -> impl Iterator<Item = &str> {
        self.spans
            .iter()
            .map(|s| self.text.get(s.clone()).unwrap_or_default())
    }
}

impl Serialize for Literals<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.each())
    }
}

/// `template` with each of its `spans` replaced by the literal of the
/// same place (`None`: the spans are not ascending ranges of it, or the
/// counts differ).
pub fn spliced(template: &str, spans: &[[usize; 2]], literals: &[String]) -> Option<String> {
    if spans.len() != literals.len() {
        return None;
    }
    let mut out =
        String::with_capacity(template.len() + literals.iter().map(String::len).sum::<usize>());
    let mut from = 0;
    for (&[start, end], literal) in spans.iter().zip(literals) {
        out.push_str(template.get(from..start)?);
        template.get(start..end)?;
        out.push_str(literal);
        from = end;
    }
    out.push_str(template.get(from..)?);
    Some(out)
}

/// Parameter values as a JSON array of strings and nulls.
fn parameter_values<S: serde::Serializer>(
    parameters: &Option<sqlgate_net::parameters::Parameters<'_>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(None)?;
    let mut failed = None;
    if let Some(p) = parameters {
        p.each(|v| {
            if failed.is_none() {
                failed = seq.serialize_element(&v).err();
            }
        });
    }
    match failed {
        Some(e) => Err(e),
        None => seq.end(),
    }
}

/// A held statement's approval request, when made and when decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalEvent {
    /// The request's number.
    pub request: u64,
    /// `pending` (made), `approved`, `denied`, `expired`, `withdrawn`.
    pub state: String,
    /// The rule that reviews it.
    pub rule: String,
    /// Who approved (in order), or who denied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    /// The reason given, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The server connection a session got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connected {
    /// PostgreSQL backend pid, MySQL thread id.
    pub server_id: u32,
    /// The client's application name, when it sent one.
    pub application: Option<String>,
}

/// What the server made of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    /// The command tag (`INSERT 0 1`, `SELECT 5`, `OK`, `ROWS`), when it
    /// completed.
    pub tag: Option<String>,
    /// Rows returned or affected.
    pub rows: u64,
    /// The error code, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The error message as the client saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Bytes of the answer sent to the client.
    #[serde(default)]
    pub bytes: u64,
    /// The first rows of its result as the client saw them (masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultRows>,
}

/// The first rows of a result as the client received them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRows {
    /// Column names.
    pub columns: Vec<String>,
    /// Values (`None`: NULL; binary values as `\x` and hex).
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows followed than were kept (left out of the JSON when
    /// not: most samples are whole, and every byte of a read's record
    /// is written, hashed and synced).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// A session's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// Why it ended.
    pub reason: String,
    /// Bytes received from the client.
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes sent to the client.
    #[serde(default)]
    pub bytes_out: u64,
}

/// One record as the store keeps it: its place in its session's chain and
/// its body (canonical JSON of one of the event types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The session.
    pub session: String,
    /// Its place in the session, from 0.
    pub seq: u64,
    /// What it records.
    pub kind: Kind,
    /// When, in microseconds since the Unix epoch.
    pub at_us: i64,
    /// The event, as canonical JSON.
    pub body: String,
    /// The hash of the session's previous record (zeros for the first).
    pub prev: [u8; 32],
    /// This record's hash (`chain::row_hash`).
    pub hash: [u8; 32],
}

/// One event of a session as recorded: a record of its own, or a line of
/// an [`Kind::Events`] record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The record it is in.
    pub record: u64,
    /// What it is.
    pub kind: Kind,
    /// When, in microseconds since the Unix epoch.
    pub at_us: i64,
    /// The event, as JSON.
    pub body: String,
}

/// A session's events, in order, from its records (a line that does not
/// parse is left out: `audit verify` is what says whether records are
/// intact). Statements that reference a definition come out whole, and
/// definitions themselves are not events.
pub fn events(rows: &[Row]) -> Vec<Event> {
    let mut out = Vec::with_capacity(rows.len());
    let mut definitions: std::collections::HashMap<u32, Definition> =
        std::collections::HashMap::new();
    let mut push = |record: u64, kind: Kind, at_us: i64, body: &str| match kind {
        Kind::Definition => {
            if let Ok(d) = serde_json::from_str::<Definition>(body) {
                definitions.insert(d.d, d);
            }
        }
        Kind::Statement => out.push(Event {
            record,
            kind,
            at_us,
            body: whole_statement(body, &definitions),
        }),
        _ => out.push(Event {
            record,
            kind,
            at_us,
            body: body.to_owned(),
        }),
    };
    for r in rows {
        if r.kind != Kind::Events {
            push(r.seq, r.kind, r.at_us, &r.body);
            continue;
        }
        let mut times = line::Times::default();
        for l in r.body.lines() {
            let Some((kind, at, body)) = line::fields(l) else {
                continue;
            };
            let (Some(kind), Some(at_us)) = (Kind::parse(kind), times.next(at)) else {
                continue;
            };
            push(r.seq, kind, at_us, body);
        }
    }
    out
}

/// The verdict a statement reads back with when the definition it
/// references is not in its session's records.
pub const MISSING_DEFINITION: &str = "unknown (its definition is missing)";

/// The text a statement reads back with when it references a template
/// that is not in its session's records (its literals follow).
pub const MISSING_TEXT: &str = "(text unknown: its template is missing; literals)";

/// A statement's body with its definition's fields filled in (as it is
/// when it references none, or one not found).
fn whole_statement(body: &str, definitions: &std::collections::HashMap<u32, Definition>) -> String {
    #[derive(Deserialize)]
    struct Referencing {
        d: Option<u32>,
        #[serde(default)]
        literals: Option<Vec<String>>,
    }
    let Some((d, literals)) = serde_json::from_str::<Referencing>(body)
        .ok()
        .and_then(|r| Some((r.d?, r.literals)))
    else {
        return body.to_owned();
    };
    let Ok(mut event) = serde_json::from_str::<StatementEvent>(body) else {
        return body.to_owned();
    };
    // A template's statement without its template (or not fitting it):
    // its text cannot be told.
    let missing = |mut event: StatementEvent| {
        event.verdict = MISSING_DEFINITION.to_owned();
        if let Some(literals) = &literals {
            event.text = format!("{MISSING_TEXT} {literals:?}");
        }
        serde_json::to_string(&event).unwrap_or_else(|_| body.to_owned())
    };
    let Some(def) = definitions.get(&d) else {
        // Never written by the gateway (it keeps definitions it could
        // not queue from being referenced): said, not left blank.
        return missing(event);
    };
    let text = match (&literals, &def.template) {
        (Some(literals), Some(template)) => match spliced(template, &def.literals, literals) {
            Some(text) => Some(text),
            None => return missing(event),
        },
        (Some(_), None) => return missing(event),
        // A template is never referenced without literals.
        (None, Some(_)) => return missing(event),
        (None, None) => def.text.clone(),
    };
    event.origin = def.origin.clone();
    event.fingerprint = def.fingerprint.clone();
    event.verdict = def.verdict.clone();
    event.tags = def.tags.clone();
    event.masked = def.masked;
    event.rule = def.rule.clone();
    event.masked_columns = def.masked_columns.clone();
    if let Some(text) = text {
        event.text = text;
    }
    serde_json::to_string(&event).unwrap_or_else(|_| body.to_owned())
}

/// Whether events of this kind are stored together in one
/// [`Kind::Events`] record per session and commit.
pub fn grouped(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Statement | Kind::Outcome | Kind::Connected | Kind::Approval | Kind::Definition
    )
}

/// A link of the gateway-wide chain: a session's last record, appended
/// when it ends, chained to the link before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its place, from 0.
    pub n: u64,
    /// The session.
    pub session: String,
    /// How many records the session has.
    pub records: u64,
    /// The hash of its last record.
    pub head: [u8; 32],
    /// The previous link's hash.
    pub prev: [u8; 32],
    /// This link's hash (`chain::link_hash`).
    pub hash: [u8; 32],
}

/// A session as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// Its id.
    pub id: String,
    /// Its user.
    pub user: String,
    /// Its target.
    pub target: String,
    /// Start, microseconds since the epoch.
    pub started_us: i64,
    /// End, if it ended.
    pub ended_us: Option<i64>,
    /// Statements recorded.
    pub statements: u64,
    /// Of which refused.
    pub refused: u64,
}

/// Why the store could not take or give records.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no (disk full, locked, corrupt, unreachable).
    #[error("recording store: {0}")]
    Backend(String),
    /// The writer is gone (the gateway is shutting down).
    #[error("recording store: the writer has stopped")]
    Stopped,
}

/// Opens the store a configuration names: PostgreSQL when `[store] url`
/// is set, else the SQLite file.
pub fn open(config: &config::RecordingConfig) -> Result<Box<dyn Store>, StoreError> {
    open_for(config, sqlite::Access::Write)
}

/// Opens the store for a command that only reads it (the CLI, the admin
/// API): it never migrates a store a gateway may still be writing.
pub fn open_to_read(config: &config::RecordingConfig) -> Result<Box<dyn Store>, StoreError> {
    open_for(config, sqlite::Access::Read)
}

fn open_for(
    config: &config::RecordingConfig,
    access: sqlite::Access,
) -> Result<Box<dyn Store>, StoreError> {
    match &config.postgres {
        Some(pg) => {
            let (c, tls) = postgres_settings(pg)?;
            Ok(Box::new(postgres::PostgresStore::connect(&c, tls)?))
        }
        None => Ok(Box::new(sqlite::SqliteStore::open_for(
            &config.path,
            access,
        )?)),
    }
}

/// How to reach a PostgreSQL store: its connection settings (password
/// from its file) and TLS.
type PostgresSettings = (
    ::postgres::Config,
    Option<std::sync::Arc<rustls::ClientConfig>>,
);

fn postgres_settings(pg: &config::PostgresLocation) -> Result<PostgresSettings, StoreError> {
    let c = pg.connect_config().map_err(StoreError::Backend)?;
    let tls = match pg.tls {
        sqlgate_postgres::tls::ServerTls::Disable => None,
        _ => {
            crate::install_crypto_provider();
            sqlgate_postgres::tls::client_config(&pg.tls)
                .map_err(|e| StoreError::Backend(format!("store.tls: {e}")))?
        }
    };
    Ok((c, tls))
}

/// A plain client of a PostgreSQL store, for what shares it beside the
/// trail (approvals of several gateways), as `application_name`.
pub fn postgres_client(
    pg: &config::PostgresLocation,
    application_name: &str,
) -> Result<::postgres::Client, StoreError> {
    let (mut c, tls) = postgres_settings(pg)?;
    c.application_name(application_name)
        // A store that stops answering fails these calls in seconds; it
        // never holds what waits on them.
        .connect_timeout(std::time::Duration::from_secs(5))
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(30))
        // A network that drops packets silently (no reset) fails a call
        // in seconds too, not after the kernel's minutes of retransmits.
        .tcp_user_timeout(std::time::Duration::from_secs(10))
        // The server notices a gateway gone without a word as soon
        // (its session, and the locks it holds, end).
        .options(
            "-c statement_timeout=5000 -c tcp_keepalives_idle=10 \
             -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
        );
    postgres::connect(&c, tls)
}

/// Where a configuration's store is, for logs.
pub fn location(config: &config::RecordingConfig) -> String {
    match &config.postgres {
        Some(pg) => pg.url.clone(),
        None => config.path.display().to_string(),
    }
}

/// A store of records. The writer thread is its only writer in a gateway.
pub trait Store: Send + 'static {
    /// Appends rows and links in one durable transaction; `counts`: per
    /// session, statements and refusals among the rows (for listings).
    /// The links are chained (`chain::rechain`) after the store's last
    /// link as the transaction finds it — several gateways may append to
    /// one store — and the last link written is returned.
    fn append(
        &mut self,
        rows: &[Row],
        links: &mut [Link],
        counts: &[(String, u64, u64)],
    ) -> Result<Option<Link>, StoreError>;
    /// The last link of the gateway-wide chain.
    fn last_link(&mut self) -> Result<Option<Link>, StoreError>;
    /// Sessions, newest first.
    fn sessions(&mut self) -> Result<Vec<SessionSummary>, StoreError>;
    /// A session's rows, in order.
    fn rows(&mut self, session: &str) -> Result<Vec<Row>, StoreError>;
    /// Every session with rows.
    fn session_ids(&mut self) -> Result<Vec<String>, StoreError>;
    /// Records in the store, all sessions' (verify checks that every one
    /// is among some session's rows).
    fn record_count(&mut self) -> Result<u64, StoreError>;
    /// The gateway-wide chain, in order.
    fn links(&mut self) -> Result<Vec<Link>, StoreError>;
    /// Appends a signed checkpoint, numbered after the store's last one
    /// in the same transaction (`sign` makes it for a number).
    fn add_checkpoint(
        &mut self,
        sign: &dyn Fn(u64) -> checkpoint::Checkpoint,
    ) -> Result<checkpoint::Checkpoint, StoreError>;
    /// Every checkpoint, in order.
    fn checkpoints(&mut self) -> Result<Vec<checkpoint::Checkpoint>, StoreError>;
    /// The last link through which every linked session ended before
    /// `cutoff_us` (what retention may prune), if any.
    fn prunable(&mut self, cutoff_us: i64) -> Result<Option<Link>, StoreError>;
    /// Deletes the sessions of links up to `anchor.link`, those links and
    /// the checkpoints over them, and keeps `anchor`, in one transaction.
    fn prune(&mut self, anchor: &checkpoint::Anchor) -> Result<(), StoreError>;
    /// Where the chain starts, if retention pruned it.
    fn anchor(&mut self) -> Result<Option<checkpoint::Anchor>, StoreError>;
    /// Reads until [`Store::end_snapshot`] see one consistent state of
    /// the store (only reads in between).
    fn begin_snapshot(&mut self) -> Result<(), StoreError>;
    /// Ends the snapshot.
    fn end_snapshot(&mut self) -> Result<(), StoreError>;
}
