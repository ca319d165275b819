//! `/readyz`: whether this gateway can serve now — every target's server
//! accepts a connection, and the recording store takes records. A load
//! balancer routes around a gateway that answers 503.
//!
//! It must never open a database session for the check (a TCP connect
//! only: no credentials sent, no pool slot taken).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::writer::Recorder;

/// How long a target may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` checks.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    /// Targets by name, with their server's address.
    pub targets: Vec<(String, String, u16)>,
    /// The recorder, when sessions are recorded.
    pub recorder: Option<Recorder>,
}

impl Readiness {
    /// 200 and "ready", or 503 and what is not.
    pub async fn check(&self) -> Response {
        let mut problems = Vec::new();
        for (name, host, port) in &self.targets {
            let connect = tokio::net::TcpStream::connect((host.as_str(), *port));
            match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => problems.push(format!("target {name}: {e}")),
                Err(_) => problems.push(format!(
                    "target {name}: no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )),
            }
        }
        if self.recorder.as_ref().is_some_and(|r| !r.healthy()) {
            problems.push("recording store: the last group of records failed".to_owned());
        }
        if problems.is_empty() {
            (StatusCode::OK, "ready\n").into_response()
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready:\n{}\n", problems.join("\n")),
            )
                .into_response()
        }
    }
}
