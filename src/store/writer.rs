//! The one writer: a thread that owns the store's connection, takes each
//! session's events from its mailbox (`mailbox.rs`) as one record per
//! session and commit, assigns each record its place in its session's
//! chain, and commits in groups — at once when a statement waits to be
//! durable before it is forwarded, otherwise within `flush_ms`. A group
//! that fails (disk full, store down) is kept and retried; statements
//! that must be durable are refused meanwhile (`on_failure = "refuse"`)
//! or run unrecorded for now (`"continue"`), never silently.
//!
//! This module must never let a record into the store without its hash
//! chained to the record before it, nor acknowledge a durable record
//! before its transaction committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chain::{link_hash, row_hash};
use super::checkpoint::Key;
pub use super::config::OnFailure;
use super::mailbox::{Mailbox, Signals, Taken};
use super::{Kind, Link, Row, Store, StoreError};

mod retention;

/// The writer's maps, keyed by session ids: ids are random and made by
/// the gateway (no client picks one), so a fast hasher without a secret
/// seed is safe here.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Session starts and flushes waiting for the writer, at most (past it a
/// session goes unrecorded, logged and counted: `Recorder::dropped`).
const QUEUE: usize = 65_536;
/// Bytes of record bodies queued or kept for a retry, at most (records
/// carry result samples): past it, records nothing waits for are dropped
/// and counted, and durable ones refused.
const MAX_QUEUED_BYTES: usize = 256 << 20;
/// Past this many queued bytes, outcomes are recorded without their
/// result samples (the writer is behind).
pub(super) const SAMPLE_BACKOFF_BYTES: usize = 32 << 20;

/// A recorder's state, as metrics report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderStats {
    /// The last group was committed.
    pub healthy: bool,
    /// Groups the store failed to take.
    pub failures: u64,
    /// Groups committed.
    pub commits: u64,
    /// Records dropped (the writer fell too far behind).
    pub dropped: u64,
    /// Bytes of records waiting for the store.
    pub queued_bytes: usize,
}

pub(super) enum Msg {
    /// A session began: its start record, and where its events wait.
    Open {
        mailbox: Arc<Mailbox>,
        at_us: i64,
        body: String,
    },
    Flush(SyncSender<()>),
}

/// What waits for the next commit, in order.
enum Pending {
    /// A session's start: a record of its own.
    Start {
        session: Arc<str>,
        at_us: i64,
        body: String,
    },
    /// A session's events as taken from its mailbox: one record.
    Events { session: Arc<str>, taken: Taken },
    /// A session's end: a record of its own, and the gateway-wide link.
    End {
        session: Arc<str>,
        at_us: i64,
        body: String,
    },
}

impl Pending {
    fn bytes(&self) -> usize {
        match self {
            Pending::Start { body, .. } | Pending::End { body, .. } => body.len(),
            Pending::Events { taken, .. } => taken.lines.len(),
        }
    }
}

/// The handle sessions record through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    pub(super) tx: SyncSender<Msg>,
    /// Wakes the writer when the last handle is gone (after `tx`, so the
    /// writer then finds its channel closed, commits and stops).
    _last: Arc<WakeOnDrop>,
    /// How sessions wake the writer: only for what cannot wait (a durable
    /// record, a flush), or when it sleeps with nothing due; everything
    /// else it collects from the mailboxes when its group is due.
    pub(super) signals: Arc<Signals>,
    healthy: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    pub(super) on_failure: OnFailure,
    instance: Arc<str>,
    /// Bytes of bodies buffered, queued or held by the writer.
    pub(super) queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Groups committed, and groups the store failed to take.
    counts: Arc<[AtomicU64; 2]>,
    /// How long the store took for each group (committed or failed).
    write_seconds: prometheus_client::metrics::histogram::Histogram,
    /// What of results and parameters records keep.
    pub(super) capture: super::config::Capture,
}

/// Wakes the writer when dropped.
struct WakeOnDrop(Arc<Signals>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.wake();
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

pub(super) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Recorder {
    /// Starts the writer over `store`.
    pub fn start(
        mut store: Box<dyn Store>,
        flush: Duration,
        on_failure: OnFailure,
        instance: &str,
        signer: Option<(Key, Duration)>,
        retain: Option<Duration>,
    ) -> Result<Recorder, StoreError> {
        let last_link = store.last_link()?;
        let last_checkpoint = store.checkpoints()?.pop();
        // What the store holds when the gateway starts is signed over only
        // if it verifies: a tail edited while the gateway was down must not
        // get the gateway's signature.
        let trusted = match &signer {
            Some((key, _)) => match super::chain::verify(&mut *store, Some(&key.public())) {
                Ok(r) if r.broken.is_none() => true,
                Ok(r) => {
                    tracing::error!(finding = ?r.broken, "recording: the trail does not verify; nothing will be signed until it is repaired (sqlgate audit verify)");
                    false
                }
                Err(e) => {
                    tracing::error!(error = %e, "recording: the trail could not be verified; nothing will be signed");
                    false
                }
            },
            None => true,
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let signals = Arc::new(Signals::default());
        let write_seconds = prometheus_client::metrics::histogram::Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14),
        );
        let writer = Writer {
            counts: counts.clone(),
            write_seconds: write_seconds.clone(),
            queued: queued.clone(),
            signals: signals.clone(),
            store,
            sessions: Map::default(),
            mailboxes: Vec::new(),
            last_link,
            pending: Vec::new(),
            flush,
            on_failure,
            healthy: healthy.clone(),
            signer,
            trusted,
            signed: last_checkpoint.map(|c| (c.n, c.link)),
            signed_at: Instant::now(),
            commits: 0,
            records: 0,
            started: Instant::now(),
            retain,
            pruned_at: None,
            spare: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("sqlgate-recorder".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        signals.set_writer(handle.thread().clone());
        Ok(Recorder {
            tx,
            _last: Arc::new(WakeOnDrop(signals.clone())),
            signals,
            healthy,
            dropped: Arc::new(AtomicU64::new(0)),
            on_failure,
            instance: Arc::from(instance),
            queued,
            counts,
            write_seconds,
            capture: super::config::Capture::default(),
        })
    }

    /// Keeps this much of results and parameters.
    pub fn with_capture(mut self, capture: super::config::Capture) -> Self {
        self.capture = capture;
        self
    }

    /// Whether bound parameter values are recorded.
    pub fn records_parameters(&self) -> bool {
        self.capture.parameters
    }

    /// This gateway instance's name in records.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether the last commit succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Records dropped because the writer fell too far behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How long the store took for each group of records.
    pub fn write_seconds(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.write_seconds.clone()
    }

    /// The recorder's state, for metrics.
    pub fn stats(&self) -> RecorderStats {
        RecorderStats {
            healthy: self.healthy(),
            failures: self.counts[1].load(Ordering::Relaxed),
            commits: self.counts[0].load(Ordering::Relaxed),
            dropped: self.dropped(),
            queued_bytes: self.queued.load(Ordering::Relaxed),
        }
    }

    /// Counts `bytes` as queued if they fit the bound.
    pub(super) fn reserve(&self, bytes: usize) -> bool {
        let before = self.queued.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > MAX_QUEUED_BYTES {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Counts `bytes` as queued, whatever the bound.
    pub(super) fn count(&self, bytes: usize) {
        self.queued.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Whether the bound on bytes is reached (an event is then dropped
    /// before it is written).
    pub(super) fn full(&self) -> bool {
        self.queued.load(Ordering::Relaxed) >= MAX_QUEUED_BYTES
    }

    /// Whether the writer is so far behind that samples are left out.
    pub(super) fn behind(&self) -> bool {
        self.queued.load(Ordering::Relaxed) > SAMPLE_BACKOFF_BYTES
    }

    /// Counts and logs a record that was dropped.
    pub(super) fn lost(&self, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(dropped = n, "recording: {why}; a record was dropped");
    }

    /// Hands the writer a new session's mailbox and start record;
    /// `false` when it could not be (the session goes unrecorded).
    pub(super) fn open(&self, mailbox: Arc<Mailbox>, body: String) -> bool {
        let bytes = body.len();
        // Within the bound like any event: a store down for hours must
        // not collect the start of every session that comes meanwhile.
        if !self.reserve(bytes) {
            self.lost("the writer holds too many bytes to take a new session");
            return false;
        }
        let msg = Msg::Open {
            mailbox,
            at_us: now_us(),
            body,
        };
        if self.tx.try_send(msg).is_err() {
            self.queued.fetch_sub(bytes, Ordering::Relaxed);
            self.lost("the writer is too far behind to take a new session");
            return false;
        }
        self.signals.wake();
        true
    }

    /// Waits until everything sent before is committed (or failed).
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done)).is_ok() {
            self.signals.wake();
            let _ = wait.recv();
        }
    }
}

struct Writer {
    store: Box<dyn Store>,
    /// Open sessions: next place and last hash (as committed).
    sessions: Map<String, (u64, [u8; 32])>,
    /// Mailboxes of sessions open as taken (started, end not taken yet).
    mailboxes: Vec<Arc<Mailbox>>,
    last_link: Option<Link>,
    pending: Vec<Pending>,
    flush: Duration,
    on_failure: OnFailure,
    healthy: Arc<AtomicBool>,
    /// Bytes of bodies queued or held (shared with the recorder).
    queued: Arc<std::sync::atomic::AtomicUsize>,
    /// How sessions wake the writer (shared with the recorder).
    signals: Arc<Signals>,
    /// Groups committed and failed (shared with the recorder).
    counts: Arc<[AtomicU64; 2]>,
    /// Store write latency (shared with the recorder).
    write_seconds: prometheus_client::metrics::histogram::Histogram,
    /// The checkpoint key and how often to sign.
    signer: Option<(Key, Duration)>,
    /// The trail verified when the writer started (else nothing is
    /// signed, nor pruned).
    trusted: bool,
    /// The last checkpoint: its place and the link it covers.
    signed: Option<(u64, u64)>,
    signed_at: Instant,
    /// Transactions committed and records in them (logged at the end).
    commits: u64,
    records: u64,
    started: Instant,
    /// Sessions ended longer ago than this are pruned (hourly).
    retain: Option<Duration>,
    pruned_at: Option<Instant>,
    /// Event buffers of the last commit, emptied, for the next.
    spare: Vec<Vec<u8>>,
}

/// Bytes of event buffers kept between commits, at most.
const SPARE_BYTES: usize = 16 << 20;

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut deadline: Option<Instant> = None;
        let mut flushes: Vec<SyncSender<()>> = Vec::new();
        loop {
            // Asleep until a session wakes it (a new session, a flush, a
            // durable record, the first event buffered while nothing was
            // due), or until the open group is due.
            match deadline {
                None => std::thread::park(),
                Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
            }
            let mut stopping = false;
            loop {
                match rx.try_recv() {
                    Ok(Msg::Open {
                        mailbox,
                        at_us,
                        body,
                    }) => {
                        self.pending.push(Pending::Start {
                            session: mailbox.session.clone(),
                            at_us,
                            body,
                        });
                        self.mailboxes.push(mailbox);
                    }
                    Ok(Msg::Flush(done)) => flushes.push(done),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            }
            let urgent = self.signals.take_urgent() || !flushes.is_empty();
            if deadline.is_none() && (self.signals.dirty() || !self.pending.is_empty()) {
                deadline = Some(Instant::now() + self.flush);
            }
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            if urgent || due || stopping {
                self.signals.clear();
                self.take_mailboxes();
                self.commit();
                // Events buffered meanwhile (or a group kept after a
                // failure) are due a `flush_ms` from now.
                deadline = (self.signals.dirty() || !self.pending.is_empty())
                    .then(|| Instant::now() + self.flush);
                self.checkpoint(stopping || !flushes.is_empty());
                self.prune();
                for f in flushes.drain(..) {
                    let _ = f.send(());
                }
            }
            if stopping {
                let secs = self.started.elapsed().as_secs_f64().max(1e-3);
                tracing::info!(
                    commits = self.commits,
                    records = self.records,
                    commits_per_sec = format!("{:.1}", self.commits as f64 / secs),
                    "recording: the writer stops"
                );
                return;
            }
        }
    }

    /// Takes every session's buffered events (and its end, once it ended).
    fn take_mailboxes(&mut self) {
        let mut spare = std::mem::take(&mut self.spare);
        let pending = &mut self.pending;
        let mut released = 0;
        self.mailboxes.retain(|m| {
            let Some(mut taken) = m.take(&mut spare, &mut released) else {
                return true;
            };
            let end = taken.end.take();
            if !taken.lines.is_empty() {
                pending.push(Pending::Events {
                    session: m.session.clone(),
                    taken,
                });
            }
            match end {
                Some((at_us, body)) => {
                    pending.push(Pending::End {
                        session: m.session.clone(),
                        at_us,
                        body,
                    });
                    false
                }
                None => true,
            }
        });
        self.queued.fetch_sub(released, Ordering::Relaxed);
        self.spare = spare;
    }

    /// Chains and commits what is pending, as one transaction.
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let before = self.sessions.clone();
        let last_link = self.last_link.clone();
        let mut rows = Vec::with_capacity(self.pending.len());
        let mut links = Vec::new();
        let mut ended = Vec::new();
        let mut counts: Map<&str, (u64, u64)> = Map::default();
        // Bodies move into the rows and back after the append (no copy).
        for p in &mut self.pending {
            match p {
                Pending::Start {
                    session,
                    at_us,
                    body,
                } => {
                    chain_row(
                        &mut self.sessions,
                        &mut rows,
                        session,
                        Kind::SessionStart,
                        *at_us,
                        std::mem::take(body),
                    );
                }
                Pending::Events { session, taken } => {
                    let c = counts.entry(session).or_default();
                    c.0 += taken.statements;
                    c.1 += taken.refused;
                    chain_row(
                        &mut self.sessions,
                        &mut rows,
                        session,
                        Kind::Events,
                        taken.first_at,
                        std::mem::take(&mut taken.lines),
                    );
                }
                Pending::End {
                    session,
                    at_us,
                    body,
                } => {
                    let (seq, hash) = chain_row(
                        &mut self.sessions,
                        &mut rows,
                        session,
                        Kind::SessionEnd,
                        *at_us,
                        std::mem::take(body),
                    );
                    let (n, prev_link) = match &self.last_link {
                        Some(l) => (l.n + 1, l.hash),
                        None => (0, [0; 32]),
                    };
                    let link = Link {
                        n,
                        session: session.to_string(),
                        records: seq + 1,
                        head: hash,
                        prev: prev_link,
                        hash: link_hash(&prev_link, n, session, seq + 1, &hash),
                    };
                    self.last_link = Some(link.clone());
                    links.push(link);
                    ended.push(session.to_string());
                }
            }
        }
        let counts: Vec<(String, u64, u64)> = counts
            .into_iter()
            .map(|(s, (n, r))| (s.to_owned(), n, r))
            .collect();
        let writing = Instant::now();
        let appended = self.store.append(&rows, &mut links, &counts);
        self.write_seconds.observe(writing.elapsed().as_secs_f64());
        let written = rows.len() as u64;
        for (p, row) in self.pending.iter_mut().zip(rows) {
            match p {
                Pending::Start { body, .. } | Pending::End { body, .. } => *body = row.body,
                Pending::Events { taken, .. } => taken.lines = row.body,
            }
        }
        match appended {
            Ok(last) => {
                // The chain as the store has it (another gateway may have
                // linked sessions since).
                if last.is_some() {
                    self.last_link = last;
                }
                self.commits += 1;
                self.counts[0].fetch_add(1, Ordering::Relaxed);
                self.records += written;
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("recording: the store takes records again");
                }
                let mut bytes = 0;
                let mut kept = self.spare.iter().map(Vec::capacity).sum::<usize>();
                for p in self.pending.drain(..) {
                    bytes += p.bytes();
                    if let Pending::Events { taken, .. } = p {
                        for (_, w) in taken.durable {
                            let _ = w.send(Ok(()));
                        }
                        // The buffer is the next commit's: fresh ones of
                        // a few hundred KiB each cost page faults.
                        let mut buffer = taken.lines.into_bytes();
                        buffer.clear();
                        kept += buffer.capacity();
                        if kept <= SPARE_BYTES {
                            self.spare.push(buffer);
                        }
                    }
                }
                self.queued.fetch_sub(bytes, Ordering::Relaxed);
                for s in ended {
                    self.sessions.remove(&s);
                }
            }
            Err(e) => {
                self.counts[1].fetch_add(1, Ordering::Relaxed);
                if self.healthy.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "recording: the store cannot take records; they are kept and retried");
                }
                self.sessions = before;
                self.last_link = last_link;
                self.keep_for_retry(&e);
            }
        }
    }

    /// After a failed commit: who waits is told, a refused statement is
    /// taken out (it never runs), and the rest is kept for the next
    /// commit, each session's events in one piece.
    fn keep_for_retry(&mut self, e: &StoreError) {
        let refuse = self.on_failure == OnFailure::Refuse;
        let mut kept: Vec<Pending> = Vec::with_capacity(self.pending.len());
        let mut events_at: Map<Arc<str>, usize> = Map::default();
        let mut bytes = 0;
        for p in self.pending.drain(..) {
            let Pending::Events { session, mut taken } = p else {
                kept.push(p);
                continue;
            };
            let durable = std::mem::take(&mut taken.durable);
            let mut cut = Vec::new();
            for (range, w) in durable {
                let _ = w.send(Err(StoreError::Backend(e.to_string())));
                if refuse {
                    cut.push(range);
                }
            }
            if !cut.is_empty() {
                let before = taken.lines.len();
                taken.lines = without(&taken.lines, &cut);
                // A kept line's time written whole may make the lines
                // longer than they were: counted either way.
                let after = taken.lines.len();
                if after > before {
                    self.queued.fetch_add(after - before, Ordering::Relaxed);
                } else {
                    bytes += before - after;
                }
                taken.statements = taken.statements.saturating_sub(cut.len() as u64);
            }
            if taken.lines.is_empty() {
                continue;
            }
            match events_at.get(&session) {
                Some(&i) => {
                    if let Pending::Events { taken: first, .. } = &mut kept[i] {
                        first.lines.push_str(&taken.lines);
                        first.statements += taken.statements;
                        first.refused += taken.refused;
                    }
                }
                None => {
                    events_at.insert(session.clone(), kept.len());
                    kept.push(Pending::Events { session, taken });
                }
            }
        }
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
        self.pending = kept;
    }
}

/// `lines` without the byte ranges `cut` (ascending, whole lines; a
/// range that is not, which the mailbox never makes, is kept). A line
/// kept after a cut one gets its time whole: it may have been written
/// relative to the cut line (`line.rs`).
fn without(lines: &str, cut: &[std::ops::Range<usize>]) -> String {
    let whole_lines = |r: &std::ops::Range<usize>| {
        let bounds = |at: usize| at == 0 || lines.as_bytes().get(at - 1) == Some(&b'\n');
        r.start < r.end && lines.get(r.clone()).is_some() && bounds(r.start) && bounds(r.end)
    };
    let mut cut = cut.iter().filter(|r| whole_lines(r)).peekable();
    let mut out = String::with_capacity(lines.len());
    let mut times = super::line::Times::default();
    let mut after_cut = false;
    let mut at = 0;
    for line in lines.split_inclusive('\n') {
        let range = at..at + line.len();
        at = range.end;
        let time = super::line::fields(line).and_then(|(_, t, _)| times.next(t));
        while cut.next_if(|r| r.end <= range.start).is_some() {}
        if cut
            .peek()
            .is_some_and(|r| r.start <= range.start && range.end <= r.end)
        {
            after_cut = true;
            continue;
        }
        match super::line::fields(line) {
            Some((kind, t, body)) if after_cut && t.starts_with('+') => match time {
                Some(time) => {
                    out.push_str(kind);
                    out.push('\t');
                    out.push_str(itoa::Buffer::new().format(time));
                    out.push('\t');
                    out.push_str(body);
                }
                None => out.push_str(line),
            },
            Some(_) => out.push_str(line),
            // Not a line: the next one's time is still read after the
            // line before it, which may have been cut.
            None => {
                out.push_str(line);
                continue;
            }
        }
        after_cut = false;
    }
    out
}

/// Appends a record to `session`'s chain: its place and hash.
fn chain_row(
    sessions: &mut Map<String, (u64, [u8; 32])>,
    rows: &mut Vec<Row>,
    session: &str,
    kind: Kind,
    at_us: i64,
    body: String,
) -> (u64, [u8; 32]) {
    let state = match sessions.get_mut(session) {
        Some(s) => s,
        None => sessions.entry(session.to_owned()).or_insert((0, [0; 32])),
    };
    let (seq, prev) = *state;
    let hash = row_hash(&prev, session, seq, kind, at_us, &body);
    *state = (seq + 1, hash);
    rows.push(Row {
        session: session.to_owned(),
        seq,
        kind,
        at_us,
        body,
        prev,
        hash,
    });
    (seq, hash)
}

#[cfg(test)]
mod tests;
