//! What `/metrics` reports, read when it is scraped: the recording
//! store's health and the records it could not take. Counters live where
//! they are counted (the recorder); this module only reads them.
//!
//! It must never report a value from a record: counts only.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::store::writer::Recorder;

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    recorder: Option<Recorder>,
}

impl Metrics {
    /// Metrics of a gateway recording with `recorder` (if at all).
    pub fn new(recorder: Option<Recorder>) -> Self {
        Metrics { recorder }
    }

    /// The OpenMetrics text of the current values.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("sqlgate");
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
                "recording_queued_bytes",
                "Bytes of records waiting for the store",
                ConstGauge::new(s.queued_bytes as i64),
            );
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &registry);
        out
    }
}
