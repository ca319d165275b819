//! One session's side of the recorder: its statements (durable or
//! grouped), the server connection it got, its outcomes as the relay
//! reports them, and its end. Events go to the session's mailbox
//! (`mailbox.rs`), which the writer (`writer.rs`) takes from; a durable
//! one is acknowledged only once committed. It must never let a session
//! end unrecorded: dropping it records the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::mailbox::{Mailbox, Refused, Waiter};
use super::writer::{now_us, OnFailure, Recorder};
use super::{Kind, SessionEnd, SessionStart, StatementEvent, StoreError};

/// A wait for a durable record's commit (see
/// [`SessionRecorder::statement_durable`]).
pub type DurableWait =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send>>;

impl Recorder {
    /// Begins a session's records.
    pub fn session(&self, start: &SessionStart) -> SessionRecorder {
        let id: Arc<str> = hex::encode(rand::random::<[u8; 16]>()).into();
        let mailbox = Arc::new(Mailbox::new(id, self.signals.clone()));
        let body = serde_json::to_string(start).unwrap_or_default();
        if !self.open(mailbox.clone(), body) {
            mailbox.refuse_all();
        }
        SessionRecorder {
            events: Events {
                mailbox,
                recorder: self.clone(),
            },
            ended: false,
            traffic: Arc::new([AtomicU64::new(0), AtomicU64::new(0)]),
        }
    }
}

/// Where a session's events go: its mailbox, under its recorder's bound.
#[derive(Debug, Clone)]
struct Events {
    mailbox: Arc<Mailbox>,
    recorder: Recorder,
}

impl Events {
    /// Buffers an event `body` writes as JSON; `false` when it was
    /// dropped (the writer holds too many bytes, or the session ended).
    fn push(&self, kind: Kind, refused: bool, body: impl FnOnce(&mut Vec<u8>)) -> bool {
        self.push_waiting(kind, refused, None, body).is_ok()
    }

    fn push_waiting(
        &self,
        kind: Kind,
        refused: bool,
        durable: Option<Waiter>,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), Option<Waiter>> {
        let recorder = &self.recorder;
        if kind != Kind::Definition && recorder.full() {
            recorder.lost("the writer holds too many bytes");
            return Err(durable);
        }
        // A definition is small and never left out for the byte bound (a
        // lost one would take the fixed fields of the statements that
        // reference it).
        let reserve = |bytes| {
            if kind == Kind::Definition {
                recorder.count(bytes);
                true
            } else {
                recorder.reserve(bytes)
            }
        };
        match self
            .mailbox
            .push(kind, now_us(), refused, durable, reserve, body)
        {
            Ok(()) => Ok(()),
            Err((Refused::Full, w)) => {
                recorder.lost("the writer holds too many bytes");
                Err(w)
            }
            Err((Refused::Closed, w)) => {
                tracing::warn!(session = %self.mailbox.session, kind = kind.as_str(), "recording: a record of a session that is not open was dropped");
                Err(w)
            }
        }
    }

    fn push_json(&self, kind: Kind, refused: bool, event: &impl Serialize) -> bool {
        self.push(kind, refused, |out| json(out, event))
    }
}

/// Writes `event` as JSON (the event types always serialize; were one not
/// to, its line would hold `null`).
fn json(out: &mut Vec<u8>, event: &impl Serialize) {
    let at = out.len();
    if serde_json::to_writer(&mut *out, event).is_err() {
        out.truncate(at);
        out.extend_from_slice(b"null");
    }
}

/// One session's records.
#[derive(Debug)]
pub struct SessionRecorder {
    events: Events,
    ended: bool,
    /// Bytes from and to the client, as the relay reports them.
    traffic: Arc<[AtomicU64; 2]>,
}

impl SessionRecorder {
    /// Whether bound parameter values are recorded.
    pub fn records_parameters(&self) -> bool {
        self.events.recorder.records_parameters()
    }

    /// The session's id in the store.
    pub fn id(&self) -> &str {
        &self.events.mailbox.session
    }

    /// Records a statement nothing waits for (grouped).
    pub fn statement(&self, event: &StatementEvent) {
        self.events
            .push_json(Kind::Statement, event.refusal.is_some(), event);
    }

    /// Records a statement that must be durable before it runs, without
    /// waiting here: the returned future completes once its group is
    /// committed (an error: it must not run; with `on_failure =
    /// "continue"` it completes `Ok` and the failure is logged).
    pub fn statement_durable(&self, event: &StatementEvent) -> DurableWait {
        self.durable_json(Kind::Statement, event)
    }

    /// Records an event nothing waits for (grouped), as its JSON body;
    /// `false` when it was dropped (the writer is too far behind).
    pub fn send(&self, kind: Kind, body: &str, refused: bool) -> bool {
        self.events
            .push(kind, refused, |out| out.extend_from_slice(body.as_bytes()))
    }

    /// Records a statement that references its definition (grouped);
    /// `false` when it was dropped.
    pub fn reference(&self, reference: &super::Reference<'_>) -> bool {
        self.events.push(Kind::Statement, false, |out| {
            super::encode::reference(out, reference)
        })
    }

    /// Records a statement that references its definition and must be
    /// durable before it runs (see [`SessionRecorder::statement_durable`]).
    pub fn reference_durable(&self, reference: &super::Reference<'_>) -> DurableWait {
        self.durable_with(Kind::Statement, |out| {
            super::encode::reference(out, reference)
        })
    }

    /// Records an event that must be durable before its statement runs,
    /// as its JSON body (see [`SessionRecorder::statement_durable`]).
    pub fn durable(&self, kind: Kind, body: &str) -> DurableWait {
        self.durable_with(kind, |out| out.extend_from_slice(body.as_bytes()))
    }

    /// [`SessionRecorder::durable`] of an event written as JSON.
    pub fn durable_json(&self, kind: Kind, event: &impl Serialize) -> DurableWait {
        self.durable_with(kind, |out| json(out, event))
    }

    fn durable_with(&self, kind: Kind, body: impl FnOnce(&mut Vec<u8>)) -> DurableWait {
        let (done, wait) = tokio::sync::oneshot::channel();
        // Never blocks a relay's task: a full buffer is a failure now.
        let sent = self
            .events
            .push_waiting(kind, false, Some(done), body)
            .is_ok();
        let on_failure = self.events.recorder.on_failure;
        Box::pin(async move {
            let outcome = match sent {
                true => wait.await.unwrap_or(Err(StoreError::Stopped)),
                false => Err(StoreError::Stopped),
            };
            match (outcome, on_failure) {
                (Ok(()), _) => Ok(()),
                (Err(e), OnFailure::Refuse) => Err(e),
                (Err(e), OnFailure::Continue) => {
                    tracing::error!(error = %e, "recording: a statement runs before its record is durable (on_failure = \"continue\")");
                    Ok(())
                }
            }
        })
    }

    /// A handle that records refusals later (from a relay's task).
    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            events: self.events.clone(),
        }
    }

    /// Where the relay reports this session's outcomes (held by value in
    /// the session's sink: one allocation and one call less per outcome).
    pub fn outcome_recorder(&self) -> OutcomeRecorder {
        OutcomeRecorder {
            events: self.events.clone(),
            traffic: self.traffic.clone(),
        }
    }

    /// Records the server connection the session got.
    pub fn connected(&self, connected: &super::Connected) {
        self.events.push_json(Kind::Connected, false, connected);
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
        let bytes = body.len();
        self.events.recorder.count(bytes);
        if !self.events.mailbox.close(now_us(), body) {
            self.events
                .recorder
                .queued
                .fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

/// A session's records from elsewhere than its judge (a relay's task).
#[derive(Debug, Clone)]
pub struct SessionHandle {
    events: Events,
}

impl SessionHandle {
    /// Records a held statement's approval request or its decision.
    pub fn approval(&self, event: &super::ApprovalEvent) {
        self.events.push_json(Kind::Approval, false, event);
    }

    /// Records a statement nothing waits for.
    pub fn statement(&self, event: &StatementEvent) {
        self.events
            .push_json(Kind::Statement, event.refusal.is_some(), event);
    }
}

/// A session's outcomes, recorded as the relay reports them (grouped:
/// nothing waits for them).
#[derive(Debug)]
pub struct OutcomeRecorder {
    events: Events,
    traffic: Arc<[AtomicU64; 2]>,
}

impl sqlgate_net::outcome::OutcomeSink for OutcomeRecorder {
    fn outcome(&self, outcome: &sqlgate_net::outcome::Outcome<'_>) {
        // A writer far behind keeps outcomes, not samples.
        let sample = !self.events.recorder.behind();
        self.events.push(Kind::Outcome, false, |out| {
            super::encode::outcome(out, outcome, sample)
        });
    }

    fn sample_limits(&self) -> sqlgate_net::outcome::SampleLimits {
        let capture = &self.events.recorder.capture;
        sqlgate_net::outcome::SampleLimits {
            rows: capture.rows,
            bytes: capture.bytes,
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
