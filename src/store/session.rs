//! One session's side of the recorder: its statements (durable or
//! grouped), the server connection it got, its outcomes as the relay
//! reports them, and its end. Records go to the writer (`writer.rs`); a
//! durable one is acknowledged only once committed. It must never let a
//! session end unrecorded: dropping it records the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::writer::{now_us, Msg, OnFailure, Recorder};
use super::{Kind, SessionEnd, SessionStart, StatementEvent, StoreError};

impl Recorder {
    /// Begins a session's records.
    pub fn session(&self, start: &SessionStart) -> SessionRecorder {
        let id: std::sync::Arc<str> = hex::encode(rand::random::<[u8; 16]>()).into();
        let body = serde_json::to_string(start).unwrap_or_default();
        self.send(&id, Kind::SessionStart, body, false);
        SessionRecorder::new(id, self.clone())
    }
}

/// One session's records.
#[derive(Debug)]
pub struct SessionRecorder {
    id: std::sync::Arc<str>,
    recorder: Recorder,
    ended: bool,
    /// Bytes from and to the client, as the relay reports them.
    traffic: Arc<[AtomicU64; 2]>,
}

impl SessionRecorder {
    pub(super) fn new(id: std::sync::Arc<str>, recorder: Recorder) -> Self {
        SessionRecorder {
            id,
            recorder,
            ended: false,
            traffic: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }

    /// Whether bound parameter values are recorded.
    pub fn records_parameters(&self) -> bool {
        self.recorder.records_parameters()
    }

    /// The session's id in the store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Records a statement nothing waits for (grouped).
    pub fn statement(&self, event: &StatementEvent) {
        let body = serde_json::to_string(event).unwrap_or_default();
        self.recorder
            .send(&self.id, Kind::Statement, body, event.refusal.is_some());
    }

    /// Records a statement that must be durable before it runs, without
    /// waiting here: the returned future completes once its group is
    /// committed (an error: it must not run; with `on_failure =
    /// "continue"` it completes `Ok` and the failure is logged).
    pub fn statement_durable(
        &self,
        event: &StatementEvent,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        self.durable(
            Kind::Statement,
            serde_json::to_string(event).unwrap_or_default(),
        )
    }

    /// Records an event nothing waits for (grouped), as its JSON body;
    /// `false` when it was dropped (the writer is too far behind).
    pub fn send(&self, kind: Kind, body: String, refused: bool) -> bool {
        self.recorder.send(&self.id, kind, body, refused)
    }

    /// Records an event that must be durable before its statement runs,
    /// as its JSON body (see [`SessionRecorder::statement_durable`]).
    pub fn durable(
        &self,
        kind: Kind,
        body: String,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let bytes = body.len();
        let reserved = self.recorder.reserve(bytes);
        let (done, wait) = tokio::sync::oneshot::channel();
        let msg = Msg::Record {
            session: self.id.clone(),
            kind,
            at_us: now_us(),
            body,
            durable: Some(done),
            refused: false,
        };
        // Never blocks a relay's task: a full queue is a failure now.
        let sent = reserved && self.recorder.tx.try_send(msg).is_ok();
        if sent {
            self.recorder.writer.unpark();
        } else if reserved {
            self.recorder
                .queued
                .fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
        }
        let on_failure = self.recorder.on_failure;
        async move {
            if !sent {
                return Err(StoreError::Stopped);
            }
            match (wait.await.unwrap_or(Err(StoreError::Stopped)), on_failure) {
                (Ok(()), _) => Ok(()),
                (Err(e), OnFailure::Refuse) => Err(e),
                (Err(e), OnFailure::Continue) => {
                    tracing::error!(error = %e, "recording: a statement runs before its record is durable (on_failure = \"continue\")");
                    Ok(())
                }
            }
        }
    }

    /// A handle that records refusals later (from a relay's task).
    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            id: self.id.clone(),
            recorder: self.recorder.clone(),
        }
    }

    /// Where the relay reports this session's outcomes.
    pub fn outcome_sink(&self) -> Arc<dyn sqlgate_net::outcome::OutcomeSink> {
        Arc::new(OutcomeRecorder {
            id: self.id.clone(),
            recorder: self.recorder.clone(),
            traffic: self.traffic.clone(),
        })
    }

    /// Records the server connection the session got.
    pub fn connected(&self, connected: &super::Connected) {
        let body = serde_json::to_string(connected).unwrap_or_default();
        self.recorder.send(&self.id, Kind::Connected, body, false);
    }

    /// Records the session's end.
    pub fn end(&mut self, reason: &str) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let body = serde_json::to_string(&SessionEnd {
            reason: reason.to_owned(),
            bytes_in: self.traffic[0].load(Ordering::Relaxed),
            bytes_out: self.traffic[1].load(Ordering::Relaxed),
        })
        .unwrap_or_default();
        self.recorder.send(&self.id, Kind::SessionEnd, body, false);
    }
}

/// A session's records from elsewhere than its judge (a relay's task).
#[derive(Debug, Clone)]
pub struct SessionHandle {
    id: std::sync::Arc<str>,
    recorder: Recorder,
}

impl SessionHandle {
    /// Records a held statement's approval request or its decision.
    pub fn approval(&self, event: &super::ApprovalEvent) {
        let body = serde_json::to_string(event).unwrap_or_default();
        self.recorder.send(&self.id, Kind::Approval, body, false);
    }

    /// Records a statement nothing waits for.
    pub fn statement(&self, event: &StatementEvent) {
        let body = serde_json::to_string(event).unwrap_or_default();
        self.recorder
            .send(&self.id, Kind::Statement, body, event.refusal.is_some());
    }
}

/// A session's outcomes, recorded as the relay reports them (grouped:
/// nothing waits for them).
#[derive(Debug)]
struct OutcomeRecorder {
    id: std::sync::Arc<str>,
    recorder: Recorder,
    traffic: Arc<[AtomicU64; 2]>,
}

impl sqlgate_net::outcome::OutcomeSink for OutcomeRecorder {
    fn outcome(&self, outcome: sqlgate_net::outcome::Outcome) {
        use sqlgate_net::outcome::Outcome;
        let event = match outcome {
            Outcome::Done {
                tag,
                rows,
                bytes,
                sample,
            } => super::OutcomeEvent {
                tag: Some(tag),
                rows,
                code: None,
                message: None,
                bytes,
                // A writer far behind keeps outcomes, not samples.
                result: sample
                    .filter(|_| !self.recorder.behind())
                    .map(|s| super::ResultRows {
                        columns: s.columns,
                        rows: s.rows,
                        truncated: s.truncated,
                    }),
            },
            Outcome::Failed {
                code,
                message,
                bytes,
            } => super::OutcomeEvent {
                tag: None,
                rows: 0,
                code: Some(code),
                message: Some(message),
                bytes,
                result: None,
            },
        };
        let body = serde_json::to_string(&event).unwrap_or_default();
        self.recorder.send(&self.id, Kind::Outcome, body, false);
    }

    fn sample_limits(&self) -> sqlgate_net::outcome::SampleLimits {
        sqlgate_net::outcome::SampleLimits {
            rows: self.recorder.capture.rows,
            bytes: self.recorder.capture.bytes,
        }
    }

    fn traffic(&self, from_client: u64, to_client: u64) {
        self.traffic[0].fetch_add(from_client, Ordering::Relaxed);
        self.traffic[1].fetch_add(to_client, Ordering::Relaxed);
    }
}

impl Drop for SessionRecorder {
    fn drop(&mut self) {
        self.end("closed");
    }
}
