//! The accept loop of a MySQL listener, with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::frontend::Gateway;

/// Accepts clients until `shutdown` fires, then waits up to `grace` for
/// the sessions to finish.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let tracker = TaskTracker::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    tracker.spawn(gateway.clone().handle(tcp, peer, shutdown.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::task::yield_now().await;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            sessions = tracker.len(),
            "shutdown deadline reached with MySQL sessions still busy"
        );
    }
}
