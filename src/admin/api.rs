//! The admin plane's JSON API: approval requests listed, shown, approved
//! and denied, by people who present a bearer token of `[[admin.token]]`.
//! Who may decide is the registry's rule (`approvals`), the same for every
//! way in: the API only says who is asking.
//!
//! With the PostgreSQL store, other gateways' requests are listed and
//! shown too, and a decision about one is handed to the gateway holding it
//! (`approvals::shared`), which answers as its own API would.
//!
//! It must never answer a request without a valid token, nor take the
//! decider's identity from anything but the token.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub use super::access::Api;
use super::access::{authenticated, error, Refused};
use crate::approvals::{Approvals, DecisionError, Identity};

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
    let approvals = match caller(&api, &headers) {
        Ok((_, approvals)) => approvals,
        Err(e) => return e.into_response(),
    };
    let Some(shared) = api.shared.clone() else {
        return Json(approvals.list()).into_response();
    };
    let mut all: Vec<serde_json::Value> = approvals
        .list()
        .into_iter()
        .filter_map(|v| serde_json::to_value(v).ok())
        .collect();
    match tokio::task::spawn_blocking(move || shared.others()).await {
        Ok(Ok(others)) => all.extend(others),
        // This gateway's own requests are listed all the same.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "other gateways' approval requests could not be listed")
        }
        Err(_) => tracing::warn!("listing other gateways' approval requests failed"),
    }
    let id = |v: &serde_json::Value| v.get("id").and_then(serde_json::Value::as_u64);
    all.sort_by_key(|v| std::cmp::Reverse(id(v)));
    Json(all).into_response()
}

async fn show(State(api): State<Api>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    let approvals = match caller(&api, &headers) {
        Ok((_, approvals)) => approvals,
        Err(e) => return e.into_response(),
    };
    if let Some(r) = approvals.get(id) {
        return Json(r).into_response();
    }
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            DecisionError::NotFound(id).to_string(),
        )
    };
    match api.shared.clone().filter(|s| s.is_remote(id)) {
        None => not_found(),
        Some(shared) => match tokio::task::spawn_blocking(move || shared.other(id)).await {
            Ok(Ok(Some(view))) => Json(view).into_response(),
            Ok(Ok(None)) => not_found(),
            Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, e.to_string()),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "showing failed"),
        },
    }
}

/// A decision about another gateway's request, handed to that gateway;
/// `None` when `id` is this gateway's.
async fn decide_remote(
    api: &Api,
    id: u64,
    who: &Identity,
    approve: bool,
    reason: Option<String>,
) -> Option<Response> {
    let shared = api.shared.clone().filter(|s| s.is_remote(id))?;
    let who = who.clone();
    let asked =
        tokio::task::spawn_blocking(move || shared.decide(id, &who, approve, reason.as_deref()))
            .await;
    Some(match asked {
        Ok(Ok(answer)) => (
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
            Json(answer.body),
        )
            .into_response(),
        Ok(Err(e @ crate::approvals::shared::SharedError::NoAnswer(_))) => {
            error(StatusCode::GATEWAY_TIMEOUT, e.to_string())
        }
        Ok(Err(e)) => error(StatusCode::BAD_GATEWAY, e.to_string()),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the decision failed"),
    })
}

fn decided(r: Result<crate::approvals::RequestView, DecisionError>) -> Response {
    // One mapping for this gateway's API and for answers to others'.
    let (status, body) = crate::approvals::shared::outcome(r);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
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
    if let Some(answer) = decide_remote(&api, id, &who, true, reason.clone()).await {
        return answer;
    }
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
    if let Some(answer) = decide_remote(&api, id, &who, false, Some(reason.clone())).await {
        return answer;
    }
    let r = approvals.deny(id, &who, &reason);
    if r.is_ok() {
        tracing::info!(request = id, by = %who.user, "request denied");
    }
    decided(r)
}
