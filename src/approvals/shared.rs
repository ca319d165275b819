//! Approvals shared by several gateways through the PostgreSQL store: a
//! statement held on gateway A can be listed, shown, approved or denied
//! through gateway B's API (or CLI), and A's client proceeds within a
//! second.
//!
//! The holding gateway stays the only one that decides its requests (its
//! registry checks approvers, four eyes and counts, and wakes the held
//! session); the store carries what the others need:
//! - `approval_requests`: every request as it is now, published by its
//!   gateway on each change (one row per request, JSON);
//! - `approval_decisions`: a decision asked through another gateway,
//!   which the holding gateway applies (woken by `NOTIFY`, and polling
//!   every half second in case a notification is lost) and answers in the
//!   same row, where the asking gateway reads it.
//!
//! Request numbers are unique across gateways: each gateway takes an
//! instance number from a sequence at start and numbers its requests
//! `instance × 1,000,000 + 1 ..= (instance + 1) × 1,000,000`, so a number
//! names its gateway (past its range a gateway holds nothing more).
//!
//! `retry` mode across gateways: the holding gateway publishes each
//! request's retry key (a SHA-256 of who, where, what and the reviewing
//! rule; no value in clear) with the request; an approval is used by *claiming* its row
//! (`claimed_by`, set once, by whichever gateway's session sends the
//! statement again first): the holder claims by number, the others by key.
//! Two gateways never both run one approval; a retry on another gateway
//! than the one that asked runs too.
//!
//! A decision is applied at most once and only if its asker still waits:
//! the holder claims the row (`status IS NULL` → 102) before applying it,
//! the asker withdraws it (`status IS NULL` → 504) when it gives up, and
//! exactly one of the two wins.
//!
//! This module must never decide a request of another gateway itself, nor
//! let a store failure stall a session: publishing runs on a thread of its
//! own (the latest view per request, coalesced), the store's connections
//! have connect and statement time limits, and a failed listing of other
//! gateways' requests still lists this gateway's own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Approvals, Claim, ClaimError, Claims, DecisionError, Identity, RequestView};
use crate::store::config::PostgresLocation;

/// Requests a gateway may number before its range ends.
pub const RANGE: u64 = 1_000_000;
/// How long decided requests and decisions are kept in the store.
const KEEP: Duration = Duration::from_secs(7 * 86_400);
/// How long an asking gateway waits for the holding one's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How often the holding gateway looks for decisions without a
/// notification.
const POLL: Duration = Duration::from_millis(500);
const DECIDE_CHANNEL: &str = "sqlgate_approval_decide";

/// Serializes schema creation among gateways starting at once.
const SCHEMA_LOCK: i64 = 0x5147_4150_5052;
/// A running gateway holds the advisory lock (this, its instance number)
/// on its decisions connection: others see in `pg_locks` whether the
/// gateway holding a pending request can still decide it.
const ALIVE_LOCK: i32 = 0x5147_4157;

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS sqlgate_approvals;
CREATE SEQUENCE IF NOT EXISTS sqlgate_approvals.instances;
CREATE TABLE IF NOT EXISTS sqlgate_approvals.requests (
    id bigint PRIMARY KEY,
    state text NOT NULL,
    expires_us bigint NOT NULL,
    view text NOT NULL,
    updated_us bigint NOT NULL,
    retry_key text,
    claimed_by bigint
);
CREATE TABLE IF NOT EXISTS sqlgate_approvals.decisions (
    seq bigserial PRIMARY KEY,
    request_id bigint NOT NULL,
    asker bigint NOT NULL,
    decider text NOT NULL,
    approve boolean NOT NULL,
    reason text,
    status integer,
    answer text,
    at_us bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_unanswered
    ON sqlgate_approvals.decisions (request_id) WHERE status IS NULL;
-- A store made before retry claims were shared: its columns, added once
-- (an ALTER at every start would lock the table against every gateway).
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = 'sqlgate_approvals' AND table_name = 'requests'
                     AND column_name = 'claimed_by') THEN
        ALTER TABLE sqlgate_approvals.requests ADD COLUMN retry_key text, ADD COLUMN claimed_by bigint;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS requests_retry_key
    ON sqlgate_approvals.requests (retry_key) WHERE retry_key IS NOT NULL;
";

/// Why a shared operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The store said no or is unreachable.
    #[error("approvals store: {0}")]
    Store(String),
    /// The holding gateway did not answer in time (it may be down); the
    /// decision was withdrawn and never applies.
    #[error("the gateway holding request #{0} did not answer; the decision was withdrawn")]
    NoAnswer(u64),
    /// The holding gateway took the decision up but did not confirm its
    /// outcome in time: `show` tells.
    #[error("the gateway holding request #{0} took the decision but did not confirm it; show the request")]
    Unconfirmed(u64),
}

fn store_err(e: impl std::fmt::Display) -> SharedError {
    SharedError::Store(e.to_string())
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// One gateway's side of the shared approvals.
pub struct Shared {
    /// This gateway's instance number (its requests are numbered from
    /// `instance × RANGE`).
    instance: u64,
    location: PostgresLocation,
    /// The API's connection (listing, showing, asking decisions).
    client: Mutex<Option<postgres::Client>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A blocking client's drop runs a runtime of its own: never on an
        // async worker.
        let client = self.client.get_mut().map(Option::take).unwrap_or_default();
        if let Some(client) = client {
            let _ = std::thread::Builder::new()
                .name("sqlgate-approvals-close".to_owned())
                .spawn(move || drop(client));
        }
    }
}

/// The instance whose range request `id` is in.
fn owner(id: u64) -> u64 {
    id.saturating_sub(1) / RANGE
}

/// What a decision asked through another gateway came to: the HTTP
/// status and body the holding gateway's API would have answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The body (the request, or `{"error": ...}`).
    pub body: Value,
}

impl Shared {
    /// Joins the store's shared approvals: creates the tables, takes an
    /// instance number, numbers `approvals`' requests in its range,
    /// publishes their changes, and applies decisions other gateways ask
    /// for, until `shutdown`.
    pub async fn start(
        location: &PostgresLocation,
        approvals: &Approvals,
        keep_parameters: bool,
        shutdown: CancellationToken,
    ) -> Result<Arc<Shared>, SharedError> {
        // The store's client blocks: off the async workers.
        let joining = location.clone();
        let (client, instance) = tokio::task::spawn_blocking(move || {
            let mut client =
                crate::store::postgres_client(&joining, "sqlgate-approvals").map_err(store_err)?;
            let joined = join(&mut client);
            match joined {
                Ok(instance) => Ok((client, instance)),
                Err(e) => {
                    drop(client);
                    Err(e)
                }
            }
        })
        .await
        .map_err(store_err)??;
        let base = instance
            .checked_mul(RANGE)
            .ok_or_else(|| SharedError::Store("instance numbers are used up".to_owned()))?;
        // Built first: its Drop closes the client off the async workers,
        // whatever fails below.
        let shared = Arc::new(Shared {
            instance,
            location: location.clone(),
            client: Mutex::new(Some(client)),
        });
        let queue = Arc::new(Queue::default());
        let publishing = (location.clone(), queue.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("sqlgate-approvals-publish".to_owned())
            .spawn(move || publish(&publishing.0, &publishing.1, &publishing.2))
            .map_err(store_err)?;
        let deciding = (location.clone(), approvals.clone());
        std::thread::Builder::new()
            .name("sqlgate-approvals-decide".to_owned())
            .spawn(move || apply_decisions(&deciding.0, &deciding.1, instance, &shutdown))
            .map_err(store_err)?;
        approvals.set_id_range(base, RANGE);
        approvals.set_shared(shared.clone());
        approvals.set_publisher(Box::new(move |view: &RequestView| {
            queue.push(view, keep_parameters);
        }));
        tracing::info!(
            instance,
            first = base + 1,
            "approvals shared through the PostgreSQL store"
        );
        Ok(shared)
    }

    /// Whether request `id` is held by another gateway (this gateway's
    /// numbers are `(instance × RANGE, (instance + 1) × RANGE]`).
    pub fn is_remote(&self, id: u64) -> bool {
        owner(id) != self.instance
    }

    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T, SharedError> {
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(postgres::Client::is_closed) {
            *slot = Some(
                crate::store::postgres_client(&self.location, "sqlgate-approvals")
                    .map_err(store_err)?,
            );
        }
        let client = slot.as_mut().expect("connected above");
        f(client).map_err(|e| {
            // A broken connection is replaced on the next call.
            *slot = None;
            store_err(e)
        })
    }

    /// Other gateways' requests: every pending one not past its expiry
    /// whose gateway still runs (one that is gone can no longer decide
    /// it), and the 200 decided most recently.
    pub fn others(&self) -> Result<Vec<Value>, SharedError> {
        let (lo, hi) = self.range();
        let now = now_us();
        let rows = self.with_client(|c| {
            c.query(
                "(SELECT view, id FROM sqlgate_approvals.requests r
                  WHERE (id <= $1 OR id > $2) AND state = 'pending' AND expires_us >= $3
                    AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                                WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
                                  AND l.database = (SELECT oid FROM pg_catalog.pg_database
                                                    WHERE datname = pg_catalog.current_database())
                                  AND l.classid::int8 = $4 AND l.objid::int8 = (r.id - 1) / $5))
                 UNION ALL
                 (SELECT view, id FROM sqlgate_approvals.requests
                  WHERE (id <= $1 OR id > $2) AND state <> 'pending'
                  ORDER BY updated_us DESC LIMIT 200)",
                &[&lo, &hi, &now, &i64::from(ALIVE_LOCK), &(RANGE as i64)],
            )
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r.get::<_, &str>(0)).ok())
            .collect())
    }

    /// Another gateway's request `id`.
    pub fn other(&self, id: u64) -> Result<Option<Value>, SharedError> {
        let row = self.with_client(|c| {
            c.query_opt(
                "SELECT view FROM sqlgate_approvals.requests WHERE id = $1",
                &[&(id as i64)],
            )
        })?;
        Ok(row.and_then(|r| serde_json::from_str(r.get::<_, &str>(0)).ok()))
    }

    /// Asks the gateway holding request `id` to apply `who`'s decision,
    /// and waits for its answer.
    pub fn decide(
        &self,
        id: u64,
        who: &Identity,
        approve: bool,
        reason: Option<&str>,
    ) -> Result<Answer, SharedError> {
        let decider = serde_json::to_string(who).map_err(store_err)?;
        if self.other(id)?.is_none() {
            // Nobody holds it: never a decision row that nobody answers.
            return Ok(Answer {
                status: 404,
                body: serde_json::json!({ "error": DecisionError::NotFound(id).to_string() }),
            });
        }
        let asker = self.instance as i64;
        let seq: i64 = self.with_client(|c| {
            let seq: i64 = c
                .query_one(
                    "INSERT INTO sqlgate_approvals.decisions (request_id, asker, decider, approve, reason, at_us)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                    &[&(id as i64), &asker, &decider, &approve, &reason, &now_us()],
                )?
                .get(0);
            c.execute(&format!("NOTIFY {DECIDE_CHANNEL}"), &[])?;
            Ok(seq)
        })?;
        let answered = self.await_answer(id, seq);
        if answered.is_err() {
            // Given up (no answer, or the store failed while waiting):
            // withdrawn unless the holder has taken it up.
            let _ = self.withdraw(seq);
        }
        answered
    }

    /// Polls decision `seq` until answered: its answer, or why not.
    fn await_answer(&self, id: u64, seq: i64) -> Result<Answer, SharedError> {
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut withdrawn_tried = false;
        loop {
            let row = self.with_client(|c| {
                c.query_one(
                    "SELECT status, answer FROM sqlgate_approvals.decisions WHERE seq = $1",
                    &[&seq],
                )
            })?;
            let status: Option<i32> = row.get(0);
            match status {
                Some(102) => {}
                Some(status) => {
                    let body: Option<&str> = row.get(1);
                    return Ok(Answer {
                        status: status as u16,
                        body: body
                            .and_then(|b| serde_json::from_str(b).ok())
                            .unwrap_or(Value::Null),
                    });
                }
                None if Instant::now() > deadline && !withdrawn_tried => {
                    withdrawn_tried = true;
                    if self.withdraw(seq)? {
                        return Err(SharedError::NoAnswer(id));
                    }
                    // Taken up meanwhile: its answer comes.
                }
                None => {}
            }
            if Instant::now() > deadline + ANSWER_WAIT {
                return Err(SharedError::Unconfirmed(id));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Withdraws decision `seq` unless the holder has taken it up; whether
    /// it was withdrawn.
    fn withdraw(&self, seq: i64) -> Result<bool, SharedError> {
        self.with_client(|c| {
            c.query_opt(
                "UPDATE sqlgate_approvals.decisions SET status = 504
                 WHERE seq = $1 AND status IS NULL RETURNING seq",
                &[&seq],
            )
        })
        .map(|r| r.is_some())
    }

    /// Claims this gateway's approved `retry` request `view` for one run:
    /// whether no gateway claimed it before (its row is written here if
    /// it was not published yet).
    fn claim_own_row(&self, view: &RequestView) -> Result<bool, SharedError> {
        // Written here only when not yet published: without its values
        // (the publisher writes the view as the recording keeps it).
        let mut shown = view.clone();
        for s in &mut shown.ask.statements {
            if s.parameters.take().is_some() {
                s.parameters_withheld = true;
            }
        }
        let json = serde_json::to_string(&shown).map_err(store_err)?;
        let me = self.instance as i64;
        let row = self.with_client(|c| {
            c.query_opt(
                "INSERT INTO sqlgate_approvals.requests
                     (id, state, expires_us, view, updated_us, retry_key, claimed_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO UPDATE SET claimed_by = EXCLUDED.claimed_by
                     WHERE sqlgate_approvals.requests.claimed_by IS NULL
                 RETURNING id",
                &[
                    &(view.id as i64),
                    &view.state.name(),
                    &view.expires_us,
                    &json,
                    &now_us(),
                    &view.retry_key,
                    &me,
                ],
            )
        })?;
        Ok(row.is_some())
    }

    /// Claims an approved, unused `retry` request of `key` held by any
    /// gateway (one only, even when two are approved); else names a
    /// pending one of it.
    fn claim_by_key_row(&self, key: &str) -> Result<Claim, SharedError> {
        let me = self.instance as i64;
        let now = now_us();
        self.with_client(|c| {
            let claimed = c.query_opt(
                "UPDATE sqlgate_approvals.requests SET claimed_by = $1
                 WHERE id = (SELECT id FROM sqlgate_approvals.requests
                             WHERE retry_key = $2 AND claimed_by IS NULL
                               AND state = 'approved' AND expires_us > $3
                             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                   AND claimed_by IS NULL
                 RETURNING id, view",
                &[&me, &key, &now],
            )?;
            if let Some(row) = claimed {
                let id: i64 = row.get(0);
                let view: Value = serde_json::from_str(row.get::<_, &str>(1)).unwrap_or_default();
                let by = view["approvals"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|a| a["by"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                return Ok(Claim::Approved { id: id as u64, by });
            }
            // Only a request whose gateway still runs (holds its lock) can
            // be decided: one of a gateway that is gone is asked anew.
            let pending = c.query_opt(
                "SELECT r.id FROM sqlgate_approvals.requests r
                 WHERE r.retry_key = $1 AND r.state = 'pending' AND r.claimed_by IS NULL
                   AND r.expires_us > $2
                   AND EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                               WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
                                 AND l.database = (SELECT oid FROM pg_catalog.pg_database
                                                   WHERE datname = pg_catalog.current_database())
                                 AND l.classid::int8 = $3 AND l.objid::int8 = (r.id - 1) / $4)
                 ORDER BY r.id LIMIT 1",
                &[&key, &now, &i64::from(ALIVE_LOCK), &(RANGE as i64)],
            )?;
            Ok(pending.map_or(Claim::None, |r| Claim::Pending(r.get::<_, i64>(0) as u64)))
        })
    }

    /// This gateway's request numbers: `(lo, hi]`.
    fn range(&self) -> (i64, i64) {
        (
            (self.instance * RANGE) as i64,
            ((self.instance + 1) * RANGE) as i64,
        )
    }
}

impl Claims for Shared {
    fn claim_own(&self, view: &RequestView) -> Result<bool, ClaimError> {
        self.claim_own_row(view)
            .map_err(|e| ClaimError(e.to_string()))
    }

    fn claim_by_key(&self, hash: &str) -> Result<Claim, ClaimError> {
        self.claim_by_key_row(hash)
            .map_err(|e| ClaimError(e.to_string()))
    }
}

/// Requests waiting to be published: the latest view of each (a newer
/// change replaces an older one not yet written), so the queue is bounded
/// by the registry's own bounds whatever the store does.
#[derive(Default)]
struct Queue {
    latest: Mutex<std::collections::BTreeMap<u64, RequestView>>,
    ready: std::sync::Condvar,
}

impl Queue {
    /// Queues a request's view (bound values left out unless the
    /// recording keeps them).
    fn push(&self, view: &RequestView, keep_parameters: bool) {
        let mut view = view.clone();
        if !keep_parameters {
            for s in &mut view.ask.statements {
                if s.parameters.take().is_some() {
                    s.parameters_withheld = true;
                }
            }
        }
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(view.id, view);
        self.ready.notify_one();
    }

    /// Everything queued, once there is something (or after a second).
    fn take(&self) -> Vec<RequestView> {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if latest.is_empty() {
            latest = self
                .ready
                .wait_timeout(latest, Duration::from_secs(1))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        std::mem::take(&mut *latest).into_values().collect()
    }

    /// Puts back views that could not be written, unless newer ones came.
    fn put_back(&self, views: Vec<RequestView>) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        for v in views {
            latest.entry(v.id).or_insert(v);
        }
    }
}

/// Writes queued views on a connection of its own until `shutdown` (and
/// what is queued then); a store failure puts them back and retries after
/// a second.
fn publish(location: &PostgresLocation, queue: &Queue, shutdown: &CancellationToken) {
    let mut client: Option<postgres::Client> = None;
    loop {
        let stopping = shutdown.is_cancelled();
        let views = queue.take();
        if views.is_empty() {
            if stopping {
                return;
            }
            continue;
        }
        if client.as_ref().is_none_or(postgres::Client::is_closed) {
            client = crate::store::postgres_client(location, "sqlgate-approvals")
                .inspect_err(
                    |e| tracing::warn!(error = %e, "approvals: cannot reach the store to publish"),
                )
                .ok();
        }
        let mut failed = Vec::new();
        match client.as_mut() {
            None => failed = views,
            Some(c) => {
                let mut views = views.into_iter();
                for view in views.by_ref() {
                    let Ok(json) = serde_json::to_string(&view) else {
                        continue;
                    };
                    let done = c.execute(
                        "INSERT INTO sqlgate_approvals.requests (id, state, expires_us, view, updated_us, retry_key)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (id) DO UPDATE SET state = $2, expires_us = $3, view = $4, updated_us = $5, retry_key = $6",
                        &[&(view.id as i64), &view.state.name(), &view.expires_us, &json, &now_us(), &view.retry_key],
                    );
                    if let Err(e) = done {
                        tracing::warn!(request = view.id, error = %e, "approvals: a request could not be published; retried");
                        failed.push(view);
                        failed.extend(views.by_ref());
                        client = None;
                        break;
                    }
                }
            }
        }
        if !failed.is_empty() {
            queue.put_back(failed);
            if stopping {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Creates the schema (one gateway at a time), prunes what is older than
/// [`KEEP`], and takes an instance number.
fn join(client: &mut postgres::Client) -> Result<u64, SharedError> {
    let mut tx = client.transaction().map_err(store_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .map_err(store_err)?;
    tx.batch_execute(SCHEMA).map_err(store_err)?;
    let old = now_us() - KEEP.as_micros() as i64;
    tx.execute(
        "DELETE FROM sqlgate_approvals.requests WHERE updated_us < $1",
        &[&old],
    )
    .map_err(store_err)?;
    tx.execute(
        "DELETE FROM sqlgate_approvals.decisions WHERE at_us < $1",
        &[&old],
    )
    .map_err(store_err)?;
    let instance: i64 = tx
        .query_one("SELECT nextval('sqlgate_approvals.instances')", &[])
        .map_err(store_err)?
        .get(0);
    tx.commit().map_err(store_err)?;
    Ok(instance as u64)
}

/// Applies the decisions other gateways ask for this gateway's requests,
/// woken by `NOTIFY` or every [`POLL`], until `shutdown`.
fn apply_decisions(
    location: &PostgresLocation,
    approvals: &Approvals,
    instance: u64,
    shutdown: &CancellationToken,
) {
    let (lo, hi) = ((instance * RANGE) as i64, ((instance + 1) * RANGE) as i64);
    let mut client: Option<postgres::Client> = None;
    while !shutdown.is_cancelled() {
        if client.as_ref().is_none_or(postgres::Client::is_closed) {
            client = crate::store::postgres_client(location, "sqlgate-approvals")
                .and_then(|mut c| {
                    let backend = |e: postgres::Error| crate::store::StoreError::Backend(e.to_string());
                    c.batch_execute(&format!("LISTEN {DECIDE_CHANNEL}"))
                        .map_err(backend)?;
                    // Never waited for: an older connection of this
                    // gateway's may hold it still (and says it is alive).
                    let held: bool = c
                        .query_one(
                            "SELECT pg_try_advisory_lock($1, $2)",
                            &[&ALIVE_LOCK, &(instance as i32)],
                        )
                        .map_err(backend)?
                        .get(0);
                    if !held {
                        tracing::warn!(instance, "approvals: an older store connection of this gateway holds its liveness lock");
                    }
                    Ok(c)
                })
                .inspect_err(|e| tracing::warn!(error = %e, "approvals: cannot reach the store for decisions"))
                .ok();
            if client.is_none() {
                std::thread::sleep(POLL);
                continue;
            }
        }
        let Some(c) = client.as_mut() else { continue };
        if let Err(e) = answer_pending(c, approvals, lo, hi) {
            tracing::warn!(error = %e, "approvals: decisions could not be applied");
            client = None;
            continue;
        }
        // Wait for the next notification, or poll.
        use postgres::fallible_iterator::FallibleIterator;
        let _ = c.notifications().timeout_iter(POLL).next();
    }
}

/// Answers every unanswered decision about this gateway's requests.
fn answer_pending(
    c: &mut postgres::Client,
    approvals: &Approvals,
    lo: i64,
    hi: i64,
) -> Result<(), postgres::Error> {
    let rows = c.query(
        "SELECT seq FROM sqlgate_approvals.decisions
         WHERE status IS NULL AND request_id > $1 AND request_id <= $2 ORDER BY seq",
        &[&lo, &hi],
    )?;
    for row in rows {
        let seq: i64 = row.get(0);
        // Claimed first: a decision its asker withdrew never applies, and
        // one claimed is never applied twice.
        let Some(row) = c.query_opt(
            "UPDATE sqlgate_approvals.decisions SET status = 102
             WHERE seq = $1 AND status IS NULL
             RETURNING request_id, decider, approve, reason, asker",
            &[&seq],
        )?
        else {
            continue;
        };
        let id: i64 = row.get(0);
        let decider: &str = row.get(1);
        let approve: bool = row.get(2);
        let reason: Option<String> = row.get(3);
        let asker: i64 = row.get(4);
        let (status, body) = match serde_json::from_str::<Identity>(decider) {
            Err(e) => (400, serde_json::json!({ "error": format!("decider: {e}") })),
            Ok(who) => {
                let id = id as u64;
                let r = if approve {
                    approvals.approve(id, &who, reason)
                } else {
                    approvals.deny(id, &who, reason.as_deref().unwrap_or_default())
                };
                if r.is_ok() {
                    tracing::info!(request = id, by = %who.user, approve, through_instance = asker, "decision taken through another gateway");
                }
                outcome(r)
            }
        };
        c.execute(
            "UPDATE sqlgate_approvals.decisions SET status = $2, answer = $3 WHERE seq = $1",
            &[&seq, &(status as i32), &body.to_string()],
        )?;
    }
    Ok(())
}

/// A decision's result as the API answers it.
pub fn outcome(r: Result<RequestView, DecisionError>) -> (u16, Value) {
    match r {
        Ok(view) => (200, serde_json::to_value(view).unwrap_or(Value::Null)),
        Err(e) => {
            let status = match &e {
                DecisionError::NotFound(_) => 404,
                DecisionError::Decided { .. } | DecisionError::AlreadyApproved(..) => 409,
                DecisionError::OwnRequest(..) | DecisionError::NotAnApprover { .. } => 403,
                DecisionError::ReasonRequired => 400,
            };
            (status, serde_json::json!({ "error": e.to_string() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_names_the_instance_whose_range_holds_it() {
        // Instance 1 numbers 1,000,001 ..= 2,000,000.
        assert_eq!(owner(RANGE), 0);
        assert_eq!(owner(RANGE + 1), 1);
        assert_eq!(owner(2 * RANGE), 1);
        assert_eq!(owner(2 * RANGE + 1), 2);
        assert_eq!(owner(0), 0);
    }
}
