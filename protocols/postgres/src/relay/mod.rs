//! The data path of an established session: two directions that run at
//! once in one task, so that a server's asynchronous messages
//! (NotificationResponse, NoticeResponse, ParameterStatus) reach an idle
//! client immediately.
//!
//! - `upstream.rs`: client → server. Holds back only what the gateway
//!   must read whole (Query and Parse for the statement hook; in masking
//!   sessions Bind, Describe, Execute and Close for their names), judges
//!   statements, replaces refused ones by markers (`marker.rs`), and
//!   queues every message the server will answer in the model.
//!   `upstream/held.rs`: where a message the judge holds (a `Verdict::
//!   Hold`: its record becoming durable, its approval) waits, with its
//!   notice, until its wait ends or the client withdraws it.
//! - `downstream.rs`: server → client. Places every server message in the
//!   model, swaps a marker's error for its refusal, and masks results.
//! - `model.rs`: what the server will do with what it was sent; it
//!   follows the server's answers, never the client's requests, and ends
//!   the session rather than guess. `names.rs`: the prepared statements
//!   and portals it keeps; `shared.rs`: what both directions share.
//!
//! Bytes are forwarded as they arrive; a huge DataRow or CopyData streams
//! through with bounded memory. Each write is awaited before the next
//! read, which carries a slow client's backpressure to the server, and the
//! model's queue is bounded (`MAX_QUEUED`): a client that pipelines
//! without reading stops being read.
//!
//! This module must never change a byte it does not have to: the rewrites
//! are the `session_authorization` ParameterStatus (it would reveal the
//! server-side user), refusals, and masked results.

mod downstream;
mod marker;
mod model;
#[cfg(test)]
mod model_tests;
mod names;
mod shared;
mod upstream;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::BytesMut;
use sqlgate_net::woken::Woken;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backend::BackendConn;
use crate::hooks::SessionHooks;
use crate::messages::backend_tag;
use crate::stream::ClientStream;

use downstream::Downstream;
use model::ServerModel;
use shared::Shared;
pub use shared::{RelayEnd, RelayLimits};
use upstream::Upstream;

/// How long answers to earlier messages may still flow to a client that
/// broke the protocol, before the session ends.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// What the session needs to know once the relay has ended.
#[derive(Debug)]
pub struct RelayOutcome {
    /// Why it ended.
    pub end: RelayEnd,
    /// The server connection is between requests and can be reset.
    pub reusable: bool,
    /// Transaction status of the last ReadyForQuery.
    pub status: u8,
    /// The client left an extended-protocol exchange without Sync.
    pub unsynced: bool,
    /// The last message forwarded to the client was an ErrorResponse.
    pub last_was_error: bool,
}

/// What reaches a session's relay from outside it.
pub struct Signals<'a> {
    /// The gateway is shutting down.
    pub shutdown: &'a CancellationToken,
    /// The client's CancelRequest (from `cancel::CancelRegistry`).
    pub cancel: std::sync::Arc<Notify>,
}

/// Runs a session until either side ends it.
pub async fn run(
    client: &mut ClientStream,
    client_buf: &mut BytesMut,
    server: &mut BackendConn,
    user: &str,
    hooks: &mut dyn SessionHooks,
    limits: RelayLimits,
    signals: Signals<'_>,
) -> RelayOutcome {
    let shutdown = signals.shutdown;
    let masking = hooks.masking();
    let sink = hooks.outcomes();
    let sink_for_traffic = sink.clone();
    let unknown = if masking {
        hooks.unknown_result()
    } else {
        None
    };
    let timings = hooks.timings();
    let mut model = ServerModel::new(masking, unknown);
    if sink.is_some() {
        model = model.note_parses();
    }
    if timings.is_some() {
        model = model.timed();
    }
    let shared = Shared {
        model: Mutex::new(model),
        unsynced: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        idle: Notify::new(),
        room: Notify::new(),
        notices: Mutex::new(Vec::new()),
        notice: Notify::new(),
        cancel: signals.cancel,
    };
    let BackendConn {
        stream,
        rbuf,
        params,
        ..
    } = server;
    let (mut client_rd, mut client_wr) = client.split();
    let (mut server_rd, mut server_wr) = stream.split();
    let mut up = Upstream::new(hooks, limits, &shared, masking);
    let mut down = Downstream::new(&shared, params, user, masking, sink).timed(timings);
    let idle = || shared.model().idle();
    // Polled at every wake of the session: a flag, not the token's locks.
    let mut stop = sqlgate_net::woken::ShutdownWait::shutdown(shutdown);
    let end = {
        // Each direction is polled only when it woke the task: a message
        // one way wakes the session, and polling the other way's read
        // found it pending (its readiness, its waker's lock) at every
        // message. Neither direction waits on the other's state without
        // a wake of its own (sockets, `Notify`s, channels).
        let c2s = Woken::new(up.run(&mut client_rd, &mut server_wr, client_buf));
        let s2c = Woken::new(down.run(&mut server_rd, &mut client_wr, rbuf));
        tokio::pin!(c2s, s2c);
        let end = loop {
            tokio::select! {
                // In order, without drawing a random start at every wake:
                // the directions return at the session's end only, so the
                // shutdown's branch is polled at every wake all the same.
                biased;
                r = &mut c2s => break r,
                r = &mut s2c => break r,
                _ = &mut stop, if !shared.draining.load(Ordering::Relaxed) => {
                    shared.draining.store(true, Ordering::Relaxed);
                    if idle() {
                        break RelayEnd::Shutdown;
                    }
                }
                _ = shared.idle.notified(), if shared.draining.load(Ordering::Relaxed) => {
                    if idle() {
                        break RelayEnd::Shutdown;
                    }
                }
            }
        };
        if matches!(end, RelayEnd::ClientError(_)) {
            // The client broke the protocol after messages the server is
            // still answering: those answers reach it first, as they would
            // from the server, then the error (for a moment at most).
            shared.draining.store(true, Ordering::Relaxed);
            let drained = async {
                while !idle() {
                    tokio::select! {
                        _ = shared.idle.notified() => {}
                        _ = &mut s2c => break,
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN, drained).await;
        }
        end
    };
    if let Some(sink) = &sink_for_traffic {
        sink.traffic(up.received, down.sent);
    }
    let (idle, status) = {
        let m = shared.model();
        (m.idle(), m.status())
    };
    let unsynced = shared.unsynced.load(Ordering::Relaxed);
    RelayOutcome {
        // A session ended mid-batch (no Sync since its last extended
        // message) is not reused: a reset's Sync would commit half of the
        // client's pipeline, where closing rolls it back as PostgreSQL
        // does for a client that goes away.
        reusable: matches!(end, RelayEnd::ClientGone | RelayEnd::Shutdown)
            && idle
            && down.between_messages()
            && !(matches!(end, RelayEnd::Shutdown) && unsynced),
        status,
        unsynced,
        last_was_error: down.last_tag() == backend_tag::ERROR_RESPONSE,
        end,
    }
}
