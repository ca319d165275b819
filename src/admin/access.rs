//! Who may use the admin API, and what its handlers share: the state
//! (tokens, the approvals registry, live sessions, the recording), the
//! bearer-token check, and the error body every refusal has. Both the
//! approvals handlers (`api.rs`) and the sessions handlers
//! (`sessions.rs`) build on it.
//!
//! It must never take a caller's identity from anything but its token.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::config::Admin;
use crate::approvals::{Approvals, Identity};

/// What the API's handlers share.
#[derive(Clone)]
pub struct Api {
    /// Tokens and who they are.
    pub admin: Arc<Admin>,
    /// The gateway's approval requests (none: approvals are off).
    pub approvals: Option<Approvals>,
    /// The sessions open now.
    pub live: Arc<sqlgate_net::live::LiveSessions>,
    /// Where sessions are recorded (`None`: recording is off).
    pub recording: Option<Arc<crate::store::config::RecordingConfig>>,
    /// Other gateways' requests, through the PostgreSQL store (`None`:
    /// this gateway's only).
    pub shared: Option<Arc<crate::approvals::shared::Shared>>,
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Why a caller is turned away.
pub(super) struct Refused(pub(super) StatusCode, pub(super) &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// Who presents `Authorization: Bearer <token>`.
pub(super) fn authenticated(api: &Api, headers: &HeaderMap) -> Result<Identity, Refused> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    token.and_then(|t| api.admin.identity(t)).ok_or(Refused(
        StatusCode::UNAUTHORIZED,
        "a valid bearer token is required (Authorization: Bearer <token>)",
    ))
}
