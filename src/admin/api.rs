//! The admin plane's JSON API: approval requests listed, shown, approved
//! and denied, by people who present a bearer token of `[[admin.token]]`.
//! Who may decide is the registry's rule (`approvals`), the same for every
//! way in: the API only says who is asking.
//!
//! It must never answer a request without a valid token, nor take the
//! decider's identity from anything but the token.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::config::Admin;
use crate::approvals::{Approvals, DecisionError, Identity};

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
}

/// A decision's body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// Why (required to deny).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The API's routes.
pub fn routes(api: Api) -> Router {
    Router::new()
        .route("/api/approvals", get(list))
        .route("/api/approvals/{id}", get(show))
        .route("/api/approvals/{id}/approve", post(approve))
        .route("/api/approvals/{id}/deny", post(deny))
        .route("/api/sessions", get(super::sessions::recorded))
        .route("/api/sessions/{id}", get(super::sessions::recorded_one))
        .route("/api/sessions/live", get(super::sessions::live))
        .route(
            "/api/sessions/live/{protocol}/{id}/end",
            post(super::sessions::end),
        )
        .with_state(api)
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// Why a caller is turned away.
pub(super) struct Refused(StatusCode, &'static str);

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

/// The caller, and the approvals it may see.
fn caller(api: &Api, headers: &HeaderMap) -> Result<(Identity, Approvals), Refused> {
    let who = authenticated(api, headers)?;
    let Some(approvals) = api.approvals.clone() else {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            "approvals are off on this gateway",
        ));
    };
    Ok((who, approvals))
}

async fn list(State(api): State<Api>, headers: HeaderMap) -> Response {
    match caller(&api, &headers) {
        Ok((_, approvals)) => Json(approvals.list()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn show(State(api): State<Api>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    match caller(&api, &headers) {
        Ok((_, approvals)) => match approvals.get(id) {
            Some(r) => Json(r).into_response(),
            None => error(
                StatusCode::NOT_FOUND,
                DecisionError::NotFound(id).to_string(),
            ),
        },
        Err(e) => e.into_response(),
    }
}

fn decided(r: Result<crate::approvals::RequestView, DecisionError>) -> Response {
    match r {
        Ok(view) => Json(view).into_response(),
        Err(e) => {
            let status = match &e {
                DecisionError::NotFound(_) => StatusCode::NOT_FOUND,
                DecisionError::Decided { .. } | DecisionError::AlreadyApproved(..) => {
                    StatusCode::CONFLICT
                }
                DecisionError::OwnRequest(..) | DecisionError::NotAnApprover { .. } => {
                    StatusCode::FORBIDDEN
                }
                DecisionError::ReasonRequired => StatusCode::BAD_REQUEST,
            };
            error(status, e.to_string())
        }
    }
}

async fn approve(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    body: Option<Json<DecisionBody>>,
) -> Response {
    let (who, approvals) = match caller(&api, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let reason = body.and_then(|Json(b)| b.reason);
    let r = approvals.approve(id, &who, reason);
    if r.is_ok() {
        tracing::info!(request = id, by = %who.user, "approval given");
    }
    decided(r)
}

async fn deny(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    body: Option<Json<DecisionBody>>,
) -> Response {
    let (who, approvals) = match caller(&api, &headers) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let reason = body.and_then(|Json(b)| b.reason).unwrap_or_default();
    let r = approvals.deny(id, &who, &reason);
    if r.is_ok() {
        tracing::info!(request = id, by = %who.user, "request denied");
    }
    decided(r)
}
