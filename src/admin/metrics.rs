//! What `/metrics` reports, read when it is scraped: the sessions open
//! and opened per protocol and target, statements judged by verdict and
//! tag, refusals by rule, the server pools (size, in use, idle, waiting),
//! how the classification cache served texts, the recording store's
//! health, write latency and the records it could not take, and
//! statements held for approval (pending, how they ended, how long they
//! waited). Counters live where they are counted (the sessions'
//! `Counters`, the recorder, the engine); this module only reads them.
//!
//! It must never report a value from a record: counts only.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::store::writer::Recorder;

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    recorder: Option<Recorder>,
    approvals: Option<crate::approvals::Approvals>,
    live: Option<std::sync::Arc<sqlgate_net::live::LiveSessions>>,
    engine: Option<std::sync::Arc<crate::policy::engine::Engine>>,
    counters: Option<std::sync::Arc<super::counters::Counters>>,
}

/// A metric's labels.
type Labels = Vec<(&'static str, String)>;

impl Metrics {
    /// Metrics of a gateway recording with `recorder` (if at all).
    pub fn new(recorder: Option<Recorder>) -> Self {
        Metrics {
            recorder,
            ..Default::default()
        }
    }

    /// And of the sessions open now and the engine's cache.
    pub fn with_sessions(
        mut self,
        live: std::sync::Arc<sqlgate_net::live::LiveSessions>,
        engine: std::sync::Arc<crate::policy::engine::Engine>,
    ) -> Self {
        self.live = Some(live);
        self.engine = Some(engine);
        self
    }

    /// And of its held statements.
    pub fn with_counters(mut self, counters: std::sync::Arc<super::counters::Counters>) -> Self {
        self.counters = Some(counters);
        self
    }

    /// Reports statements held for approval.
    pub fn with_approvals(mut self, approvals: Option<crate::approvals::Approvals>) -> Self {
        self.approvals = approvals;
        self
    }

    /// The OpenMetrics text of the current values.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("sqlgate");
        if let Some(live) = &self.live {
            let open: Family<Labels, Gauge> = Family::default();
            for s in live.list() {
                open.get_or_create(&vec![
                    ("protocol", s.protocol.to_owned()),
                    ("target", s.target),
                ])
                .inc();
            }
            registry.register("sessions_open", "Client sessions open now", open);
        }
        if let Some(c) = &self.counters {
            registry.register(
                "sessions",
                "Client sessions opened (authenticated and routed; a MySQL COM_CHANGE_USER opens another), by protocol and target",
                c.sessions.clone(),
            );
            registry.register(
                "statements",
                "Statements judged and let through (run, or held for approval), by verdict and tag: a statement counts once per tag (prepared executions are not counted again)",
                c.statements.clone(),
            );
            registry.register(
                "refusals",
                "Texts refused by the policy, by verdict and the rule that decided ((defaults): no rule named the tag; (review not held): reviewed where nobody can approve; masking, boundary: not the tags). Held statements later denied or expired count in sqlgate_approvals_*",
                c.refusals.clone(),
            );
            registry.register(
                "request_seconds",
                "How long requests took the server, as the relay saw them: a PostgreSQL Query (every statement of its text) or extended-protocol batch to its ReadyForQuery, a MySQL command to its last packet",
                c.request_seconds.clone(),
            );
            registry.register(
                "masked_cells",
                "Result cells masked before they left the gateway",
                c.masked_cells.clone(),
            );
            let pools: [(&str, &str, Family<Labels, Gauge>); 4] = [
                (
                    "pool_size",
                    "Server connections a target's pool may lend at once",
                    Family::default(),
                ),
                (
                    "pool_in_use",
                    "Server connections lent to sessions now",
                    Family::default(),
                ),
                (
                    "pool_idle",
                    "Server connections open and idle now",
                    Family::default(),
                ),
                (
                    "pool_waiting",
                    "Sessions waiting for a server connection now",
                    Family::default(),
                ),
            ];
            for (target, protocol, stats) in c.pools() {
                let labels = vec![("protocol", protocol.to_owned()), ("target", target)];
                for ((_, _, family), n) in
                    pools
                        .iter()
                        .zip([stats.size, stats.in_use, stats.idle, stats.waiting])
                {
                    family.get_or_create(&labels).set(n as i64);
                }
            }
            for (name, help, family) in pools {
                registry.register(name, help, family);
            }
        }
        if let Some(engine) = &self.engine {
            let c = engine.cache_counts();
            let served: Family<Labels, Counter> = Family::default();
            for (how, n) in [
                ("fingerprint", c.by_fingerprint),
                ("text", c.by_text),
                ("classified", c.classified),
            ] {
                served
                    .get_or_create(&vec![("by", how.to_owned())])
                    .inc_by(n);
            }
            registry.register(
                "statement_texts",
                "Statement texts judged, by how their classification was found: a text of the same fingerprint, the same text, or parsed",
                served,
            );
        }
        let enabled = self.recorder.is_some();
        registry.register(
            "recording_enabled",
            "Whether sessions are recorded",
            ConstGauge::new(i64::from(enabled)),
        );
        if let Some(r) = &self.recorder {
            let s = r.stats();
            registry.register(
                "recording_store_healthy",
                "Whether the recording store took the last group of records (0: statements that must be recorded are refused, or run unrecorded with on_failure = \"continue\")",
                ConstGauge::new(i64::from(s.healthy)),
            );
            registry.register(
                "recording_store_failures",
                "Groups of records the store failed to take (disk full, store down)",
                ConstCounter::new(s.failures),
            );
            registry.register(
                "recording_dropped_records",
                "Records dropped because the recorder fell too far behind",
                ConstCounter::new(s.dropped),
            );
            registry.register(
                "recording_commits",
                "Groups of records committed",
                ConstCounter::new(s.commits),
            );
            registry.register(
                "recording_write_seconds",
                "How long the store took to take each group of records",
                r.write_seconds(),
            );
            registry.register(
                "recording_queued_bytes",
                "Bytes of records waiting for the store",
                ConstGauge::new(s.queued_bytes as i64),
            );
        }
        if let Some(a) = &self.approvals {
            let c = a.counts();
            registry.register(
                "approvals_pending",
                "Statements held for approval now",
                ConstGauge::new(c.pending as i64),
            );
            for (name, help, n) in [
                (
                    "approvals_approved",
                    "Held statements approved (and run)",
                    c.approved,
                ),
                ("approvals_denied", "Held statements denied", c.denied),
                (
                    "approvals_expired",
                    "Held statements nobody decided in time",
                    c.expired,
                ),
                (
                    "approvals_withdrawn",
                    "Held statements withdrawn (client left or cancelled, gateway stopped)",
                    c.withdrawn,
                ),
            ] {
                registry.register(name, help, ConstCounter::new(n));
            }
            registry.register(
                "approvals_webhook_failures",
                "Webhook notes not delivered after every try, or dropped",
                ConstCounter::new(a.notify_failures()),
            );
            registry.register(
                "approval_wait_seconds",
                "How long held statements waited for their end",
                a.wait_histogram(),
            );
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
