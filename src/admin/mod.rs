//! The admin plane: an HTTP listener of its own (`[admin] listen`), apart
//! from the database listeners, serving `/metrics` (Prometheus text) and
//! `/healthz`: the recording store's health — why statements that must be
//! recorded are refused shows here as well as in the log — and the JSON
//! API of approvals (`api.rs`).
//!
//! It must never serve a secret nor a recorded value: only counts and
//! states.

mod access;
pub mod api;
pub mod config;
pub mod counters;
pub mod metrics;
pub mod ready;
mod sessions;
pub mod tls;

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
    tls: Option<Arc<rustls::ServerConfig>>,
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
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, "admin listener ready (/metrics, /healthz, /readyz, /api)");
    let task = tokio::spawn(async move {
        let stop = async move { shutdown.cancelled().await };
        let served = match tls {
            Some(config) => match tls::TlsListener::new(listener, config) {
                Ok(l) => axum::serve(l, app).with_graceful_shutdown(stop).await,
                Err(e) => Err(e),
            },
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok((addr, task))
}
