//! The admin API's sessions: those recorded (listed, and one's events, as
//! `sqlgate sessions list | export` give them from the store) and those
//! open now on every listener, and ending one (`sqlgate sessions live |
//! end`). Ending fires the
//! session's own token: its relay ends it at the next idle point with an
//! error that says an operator ended it (PostgreSQL FATAL 57P01, MySQL
//! ERR 1927), and the recording's end reason says so. A statement running
//! completes first; to stop one, cancel it (`pg_cancel_backend`, `KILL
//! QUERY`) and the session ends once it is idle.
//!
//! It must never act without a valid token, and it logs who ended what.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::access::{authenticated, error, Api};

/// `GET /api/sessions/live`: the open sessions.
pub(super) async fn live(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticated(&api, &headers) {
        return e.into_response();
    }
    let sessions: Vec<serde_json::Value> = api
        .live
        .list()
        .into_iter()
        .map(|s| {
            json!({
                "protocol": s.protocol,
                "id": s.id,
                "user": s.user,
                "target": s.target,
                "client": s.client,
                "started": s.started,
            })
        })
        .collect();
    Json(sessions).into_response()
}

/// `POST /api/sessions/live/{protocol}/{id}/end`: ends one.
pub(super) async fn end(
    State(api): State<Api>,
    headers: HeaderMap,
    Path((protocol, id)): Path<(String, u64)>,
) -> Response {
    let who = match authenticated(&api, &headers) {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    if !api.admin.may_end_sessions(&who) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not end sessions (operators: {})",
                who.user,
                api.admin.operators.clone().unwrap_or_default().join(", ")
            ),
        );
    }
    if !api.live.end(&protocol, id) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no open {protocol} session {id}"),
        );
    }
    tracing::warn!(%protocol, session = id, by = %who.user, "session ended by an operator");
    Json(json!({ "protocol": protocol, "id": id, "ending": true })).into_response()
}

/// Filters of `GET /api/sessions`.
#[derive(Debug, serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Filter {
    user: Option<String>,
    target: Option<String>,
    /// Only sessions with a refused statement.
    #[serde(default)]
    refused: bool,
}

/// Runs `read` on a store handle of its own, off the async workers.
async fn with_store<T: Send + 'static>(
    api: &Api,
    read: impl FnOnce(&mut dyn crate::store::Store) -> Result<T, crate::store::StoreError>
        + Send
        + 'static,
) -> Result<T, Response> {
    let Some(config) = api.recording.clone() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "recording is off on this gateway",
        ));
    };
    let read = tokio::task::spawn_blocking(move || {
        let mut store = crate::store::open_to_read(&config)?;
        read(&mut *store)
    })
    .await;
    match read {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "admin API: the recording store cannot be read");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the recording store cannot be read (the gateway's log says why)",
            ))
        }
        Err(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the read failed")),
    }
}

/// `GET /api/sessions[?user=&target=&refused=true]`: recorded sessions,
/// newest first.
pub(super) async fn recorded(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(filter): Query<Filter>,
) -> Response {
    if let Err(e) = authenticated(&api, &headers) {
        return e.into_response();
    }
    match with_store(&api, |s| s.sessions()).await {
        Ok(list) => Json(
            list.into_iter()
                .filter(|s| filter.user.as_ref().is_none_or(|u| *u == s.user))
                .filter(|s| filter.target.as_ref().is_none_or(|t| *t == s.target))
                .filter(|s| !filter.refused || s.refused > 0)
                .map(|s| {
                    json!({
                        "id": s.id,
                        "user": s.user,
                        "target": s.target,
                        "started_us": s.started_us,
                        "ended_us": s.ended_us,
                        "statements": s.statements,
                        "refused": s.refused,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(r) => r,
    }
}

/// `GET /api/sessions/{id}`: a recorded session's events, in order, as
/// `sqlgate sessions export` gives them.
pub(super) async fn recorded_one(
    State(api): State<Api>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = authenticated(&api, &headers) {
        return e.into_response();
    }
    let wanted = id.clone();
    match with_store(&api, move |s| crate::store::cli::export(s, &[wanted])).await {
        Ok(lines) if lines.is_empty() => {
            error(StatusCode::NOT_FOUND, format!("no recorded session {id}"))
        }
        Ok(lines) => Json(
            lines
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(r) => r,
    }
}
