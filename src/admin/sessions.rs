//! The admin API's live sessions: the sessions open now on every listener,
//! and ending one (`sqlgate sessions live | end`). Ending fires the
//! session's own token: its relay ends it at the next idle point with an
//! error that says an operator ended it (PostgreSQL FATAL 57P01, MySQL
//! ERR 1927), and the recording's end reason says so. A statement running
//! completes first; to stop one, cancel it (`pg_cancel_backend`, `KILL
//! QUERY`) and the session ends once it is idle.
//!
//! It must never act without a valid token, and it logs who ended what.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::api::{authenticated, error, Api};

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
    if !api.live.end(&protocol, id) {
        return error(
            StatusCode::NOT_FOUND,
            format!("no open {protocol} session {id}"),
        );
    }
    tracing::warn!(%protocol, session = id, by = %who.user, "session ended by an operator");
    Json(json!({ "protocol": protocol, "id": id, "ending": true })).into_response()
}
