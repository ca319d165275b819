//! The one writer: a thread that owns the store's connection, assigns
//! each record its place in its session's chain, and commits in groups —
//! at once when a statement waits to be durable before it is forwarded,
//! otherwise within `flush_ms`. A group that fails (disk full, store
//! down) is kept and retried; statements that must be durable are refused
//! meanwhile (`on_failure = "refuse"`) or run unrecorded for now
//! (`"continue"`), never silently.
//!
//! This module must never let a record into the store without its hash
//! chained to the record before it, nor acknowledge a durable record
//! before its transaction committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chain::{link_hash, row_hash};
use super::checkpoint::Key;
pub use super::config::OnFailure;
use super::{Kind, Link, Row, Store, StoreError};

mod retention;

/// The writer's maps, keyed by session ids: ids are random and made by
/// the gateway (no client picks one), so a fast hasher without a secret
/// seed is safe here.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Records waiting for the writer, at most (past it, non-durable records
/// are dropped and counted: `Recorder::dropped`).
const QUEUE: usize = 65_536;
/// Records kept for a retry while the store fails, at most.
const MAX_PENDING: usize = 200_000;
/// Records committed in one transaction, at most.
const BATCH: usize = 4_096;
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

/// Who waits for a durable record's commit (a relay's task).
pub(super) type Waiter = tokio::sync::oneshot::Sender<Result<(), StoreError>>;

pub(super) enum Msg {
    Record {
        /// The session's id (shared: no copy per record).
        session: Arc<str>,
        kind: Kind,
        at_us: i64,
        body: String,
        durable: Option<Waiter>,
        refused: bool,
    },
    Flush(SyncSender<()>),
}

struct Pending {
    session: Arc<str>,
    kind: Kind,
    at_us: i64,
    body: String,
    durable: Option<Waiter>,
    refused: bool,
}

/// The handle sessions record through; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    pub(super) tx: SyncSender<Msg>,
    /// The writer: woken only for what cannot wait (a durable record, a
    /// flush); everything else it collects when its group is due.
    pub(super) writer: std::thread::Thread,
    healthy: Arc<AtomicBool>,
    dropped: Arc<AtomicU64>,
    pub(super) on_failure: OnFailure,
    instance: Arc<str>,
    /// Bytes of bodies queued or held by the writer.
    pub(super) queued: Arc<std::sync::atomic::AtomicUsize>,
    /// Groups committed, and groups the store failed to take.
    counts: Arc<[AtomicU64; 2]>,
    /// How long the store took for each group (committed or failed).
    write_seconds: prometheus_client::metrics::histogram::Histogram,
    /// What of results and parameters records keep.
    pub(super) capture: super::config::Capture,
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
        let write_seconds = prometheus_client::metrics::histogram::Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14),
        );
        let writer = Writer {
            counts: counts.clone(),
            write_seconds: write_seconds.clone(),
            queued: queued.clone(),
            store,
            sessions: Map::default(),
            open: Set::default(),
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
        Ok(Recorder {
            tx,
            writer: handle.thread().clone(),
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

    /// Whether the writer is so far behind that samples are left out.
    pub(super) fn behind(&self) -> bool {
        self.queued.load(Ordering::Relaxed) > SAMPLE_BACKOFF_BYTES
    }

    /// Queues a record; `false` when it was dropped.
    pub(super) fn send(&self, session: &Arc<str>, kind: Kind, body: String, refused: bool) -> bool {
        let bytes = body.len();
        // A session's start and end, and its definitions, are small and
        // never left out for the byte bound (a lost start would drop the
        // whole session, a lost end its link, a lost definition the fixed
        // fields of the statements that reference it).
        let always = matches!(
            kind,
            Kind::SessionStart | Kind::SessionEnd | Kind::Definition
        );
        if always {
            self.queued.fetch_add(bytes, Ordering::Relaxed);
        } else if !self.reserve(bytes) {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(
                dropped = n,
                "recording: the writer holds too many bytes; a record was dropped"
            );
            return false;
        }
        let msg = Msg::Record {
            session: session.clone(),
            kind,
            at_us: now_us(),
            body,
            durable: None,
            refused,
        };
        match self.tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(bytes, Ordering::Relaxed);
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    dropped = n,
                    "recording: the writer is too far behind; a record was dropped"
                );
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(bytes, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until everything sent before is committed (or failed).
    pub fn flush(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done)).is_ok() {
            self.writer.unpark();
            let _ = wait.recv();
        }
    }
}

struct Writer {
    store: Box<dyn Store>,
    /// Open sessions: next place and last hash (as committed).
    sessions: Map<String, (u64, [u8; 32])>,
    /// Sessions open as taken (started, not ended), committed or not.
    open: Set<Arc<str>>,
    last_link: Option<Link>,
    pending: Vec<Pending>,
    flush: Duration,
    on_failure: OnFailure,
    healthy: Arc<AtomicBool>,
    /// Bytes of bodies queued or held (shared with the recorder).
    queued: Arc<std::sync::atomic::AtomicUsize>,
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
    /// Group bodies of the last commit, emptied, for the next.
    spare: Vec<String>,
}

/// Bytes of group buffers kept between commits, at most.
const SPARE_BYTES: usize = 16 << 20;

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut deadline: Option<Instant> = None;
        let mut flushes: Vec<SyncSender<()>> = Vec::new();
        let mut urgent = false;
        loop {
            let mut stopping = false;
            match deadline {
                // Idle: the first record wakes the writer.
                None => match rx.recv() {
                    Ok(m) => urgent |= self.take(m, &mut flushes),
                    Err(_) => stopping = true,
                },
                // A group is open: only what cannot wait wakes it early
                // (senders of durable records and flushes unpark it), so
                // records that can wait cost no wake-up each.
                Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
            }
            // Everything queued is taken (a failing store must not leave
            // durable records waiting behind a full group).
            loop {
                match rx.try_recv() {
                    Ok(m) => urgent |= self.take(m, &mut flushes),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            }
            if !self.pending.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + self.flush);
            }
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            urgent |= !flushes.is_empty();
            if urgent || due || stopping || self.pending.len() >= BATCH {
                urgent = false;
                self.commit();
                deadline = (!self.pending.is_empty()).then(|| Instant::now() + self.flush);
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

    /// Takes a message; `true` when it cannot wait for its group.
    fn take(&mut self, msg: Msg, flushes: &mut Vec<SyncSender<()>>) -> bool {
        match msg {
            Msg::Record {
                session,
                kind,
                at_us,
                body,
                durable,
                refused,
            } => {
                // A record of a session this writer does not know open
                // (a stale handle after the session ended): never a
                // second chain for it.
                if kind == Kind::SessionStart {
                    self.open.insert(session.clone());
                }
                let open = self.open.contains(&session);
                // Definitions are never dropped here: statements already
                // queued after one reference it (they are few and small:
                // `recording::definitions` bounds them per session).
                let full = self.pending.len() >= MAX_PENDING && kind != Kind::Definition;
                if !open || full {
                    self.queued.fetch_sub(body.len(), Ordering::Relaxed);
                }
                if !open {
                    tracing::warn!(session = %session, kind = kind.as_str(), "recording: a record of a session that is not open was dropped");
                    if let Some(w) = durable {
                        let _ = w.send(Err(StoreError::Backend(
                            "the session's record is closed".to_owned(),
                        )));
                    }
                    return false;
                }
                if full {
                    tracing::error!("recording: a record was dropped while the store fails");
                    if let Some(w) = durable {
                        let _ = w.send(Err(StoreError::Backend("the store is failing".to_owned())));
                    }
                    return false;
                }
                if kind == Kind::SessionEnd {
                    self.open.remove(&session);
                }
                let urgent = durable.is_some();
                self.pending.push(Pending {
                    session,
                    kind,
                    at_us,
                    body,
                    durable,
                    refused,
                });
                urgent
            }
            Msg::Flush(done) => {
                flushes.push(done);
                true
            }
        }
    }

    /// Chains and commits what is pending, as one transaction.
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let before = self.sessions.clone();
        let last_link = self.last_link.clone();
        let mut rows = Vec::new();
        let mut links = Vec::new();
        let mut ended = Vec::new();
        let mut counts: Map<&str, (u64, u64)> = Map::default();
        // A session's statements, outcomes and connection of this commit
        // go into one record (one insert, one hash), between its start
        // and end records where those are in the commit too.
        let mut groups: Map<&str, (i64, String)> = Map::default();
        // Group bodies reuse the last commit's buffers: fresh ones of a
        // few hundred KiB each cost page faults every commit.
        let mut spare = std::mem::take(&mut self.spare);
        for p in &self.pending {
            if p.kind == Kind::Statement {
                let c = counts.entry(&p.session).or_default();
                c.0 += 1;
                c.1 += p.refused as u64;
            }
            if super::grouped(p.kind) {
                let (_, body) = groups.entry(&p.session).or_insert_with(|| {
                    let body = spare.pop().unwrap_or_else(|| String::with_capacity(4096));
                    (p.at_us, body)
                });
                use std::fmt::Write as _;
                let _ = writeln!(body, "{}\t{}\t{}", p.kind.as_str(), p.at_us, p.body);
                continue;
            }
            if let Some((at_us, body)) = groups.remove(&*p.session) {
                chain_row(
                    &mut self.sessions,
                    &mut rows,
                    &p.session,
                    Kind::Events,
                    at_us,
                    body,
                );
            }
            let (seq, hash) = chain_row(
                &mut self.sessions,
                &mut rows,
                &p.session,
                p.kind,
                p.at_us,
                p.body.clone(),
            );
            if p.kind == Kind::SessionEnd {
                let (n, prev_link) = match &self.last_link {
                    Some(l) => (l.n + 1, l.hash),
                    None => (0, [0; 32]),
                };
                let link = Link {
                    n,
                    session: p.session.to_string(),
                    records: seq + 1,
                    head: hash,
                    prev: prev_link,
                    hash: link_hash(&prev_link, n, &p.session, seq + 1, &hash),
                };
                self.last_link = Some(link.clone());
                links.push(link);
                ended.push(p.session.to_string());
            }
        }
        for (session, (at_us, body)) in groups {
            chain_row(
                &mut self.sessions,
                &mut rows,
                session,
                Kind::Events,
                at_us,
                body,
            );
        }
        let counts: Vec<(String, u64, u64)> = counts
            .into_iter()
            .map(|(s, (n, r))| (s.to_owned(), n, r))
            .collect();
        let writing = Instant::now();
        let appended = self.store.append(&rows, &mut links, &counts);
        self.write_seconds.observe(writing.elapsed().as_secs_f64());
        let written = rows.len() as u64;
        let mut kept = 0;
        self.spare = rows
            .into_iter()
            .filter(|r| r.kind == Kind::Events)
            .map(|r| {
                let mut body = r.body;
                body.clear();
                body
            })
            .take_while(|b| {
                kept += b.capacity();
                kept <= SPARE_BYTES
            })
            .collect();
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
                for p in self.pending.drain(..) {
                    bytes += p.body.len();
                    if let Some(w) = p.durable {
                        let _ = w.send(Ok(()));
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
                let refuse = self.on_failure == OnFailure::Refuse;
                let mut kept = Vec::with_capacity(self.pending.len());
                for mut p in self.pending.drain(..) {
                    if let Some(w) = p.durable.take() {
                        let _ = w.send(Err(StoreError::Backend(e.to_string())));
                        if refuse {
                            // Refused: it never runs, so it is not kept.
                            self.queued.fetch_sub(p.body.len(), Ordering::Relaxed);
                            continue;
                        }
                    }
                    kept.push(p);
                }
                if kept.len() > MAX_PENDING {
                    // The oldest go, but never a definition (statements
                    // kept after it reference it).
                    let mut excess = kept.len() - MAX_PENDING;
                    let (mut bytes, mut dropped) = (0, 0);
                    kept.retain(|p| {
                        if excess == 0 || p.kind == Kind::Definition {
                            return true;
                        }
                        excess -= 1;
                        dropped += 1;
                        bytes += p.body.len();
                        false
                    });
                    self.queued.fetch_sub(bytes, Ordering::Relaxed);
                    tracing::error!(dropped, "recording: records dropped while the store fails");
                }
                self.pending = kept;
            }
        }
    }
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
