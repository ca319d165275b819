//! Counters the sessions bump as they go, read by `/metrics`: sessions
//! opened per protocol and target, statements judged by verdict and tag,
//! refusals by the rule that decided them, and the server pools' state.
//! One instance per gateway, shared by both listeners' hooks.
//!
//! It must never hold a statement's text or a value: labels are tags,
//! verdicts, rule names, targets.

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// A metric's labels.
pub type Labels = Vec<(&'static str, String)>;

/// A pool's state, read when scraped.
pub type PoolProbe = Box<dyn Fn() -> sqlgate_net::pool::PoolStats + Send + Sync>;

/// The gateway's live counters.
pub struct Counters {
    /// Sessions opened, by protocol and target.
    pub sessions: Family<Labels, Counter>,
    /// Statements judged, by verdict and tag (a statement counts once per
    /// tag).
    pub statements: Family<Labels, Counter>,
    /// Statements refused, by verdict and the rule that decided
    /// (`(defaults)` when none did; `masking` or `boundary` when the
    /// policy's tags did not).
    pub refusals: Family<Labels, Counter>,
    /// Result cells masked, both protocols.
    pub masked_cells: Counter,
    /// How long requests took the server (a PostgreSQL Query or Sync
    /// batch to its ReadyForQuery, a MySQL command to its last packet).
    pub request_seconds: prometheus_client::metrics::histogram::Histogram,
    pools: Mutex<Vec<(String, &'static str, PoolProbe)>>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            sessions: Family::default(),
            statements: Family::default(),
            refusals: Family::default(),
            masked_cells: Counter::default(),
            // 100 µs to about 100 s.
            request_seconds: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0001, 4.0, 11),
            ),
            pools: Mutex::default(),
        }
    }
}

impl Counters {
    /// A shared set of counters.
    pub fn new() -> Arc<Counters> {
        Arc::default()
    }

    /// Watches a target's pool.
    pub fn watch_pool(&self, target: &str, protocol: &'static str, probe: PoolProbe) {
        self.pools.lock().unwrap_or_else(|e| e.into_inner()).push((
            target.to_owned(),
            protocol,
            probe,
        ));
    }

    /// Every watched pool's state now, with its target and protocol.
    pub fn pools(&self) -> Vec<(String, &'static str, sqlgate_net::pool::PoolStats)> {
        self.pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(t, p, probe)| (t.clone(), *p, probe()))
            .collect()
    }

    /// A session opened.
    pub fn session(&self, protocol: &str, target: &str) {
        self.sessions
            .get_or_create(&vec![
                ("protocol", protocol.to_owned()),
                ("target", target.to_owned()),
            ])
            .inc();
    }

    /// The counter of statements of `verdict` with `tag` (`none`: no
    /// tags), for a session to keep: counting is then one atomic add, no
    /// label lookup.
    pub fn statement_counter(&self, verdict: &str, tag: &str) -> Counter {
        self.statements
            .get_or_create(&vec![
                ("verdict", verdict.to_owned()),
                ("tag", tag.to_owned()),
            ])
            .clone()
    }

    /// A text refused.
    pub fn refusal(&self, verdict: &str, rule: &str) {
        self.refusals
            .get_or_create(&vec![
                ("verdict", verdict.to_owned()),
                ("rule", rule.to_owned()),
            ])
            .inc();
    }
}
