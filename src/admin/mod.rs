//! The admin plane: an HTTP listener of its own (`[admin] listen`), apart
//! from the database listeners, serving `/metrics` (Prometheus text) and
//! `/healthz`: the recording store's health — why statements that must be
//! recorded are refused shows here as well as in the log — and the JSON
//! API of approvals (`api.rs`).
//!
//! It must never serve a secret nor a recorded value: only counts and
//! states.

pub mod api;
pub mod config;
pub mod metrics;
pub mod ready;
mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds the admin listener and serves it until `shutdown`.
pub async fn start(
    listen: SocketAddr,
    metrics: Arc<metrics::Metrics>,
    api: api::Api,
    ready: ready::Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} ([admin] listen): {e}"))?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move { ready.check().await }
            }),
        )
        .merge(api::routes(api));
    tracing::info!(%addr, "admin listener ready (/metrics, /healthz, /readyz, /api)");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok((addr, task))
}
