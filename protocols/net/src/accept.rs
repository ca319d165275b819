//! The accept loop of a listener: a task per client, and on shutdown stop
//! accepting, let sessions end at their next idle point (each protocol
//! tells its clients in its own terms), and wait for them up to a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Accepts clients until `shutdown` fires, running `session` for each in
/// its own task, then waits up to `grace` for the sessions to finish.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    shutdown: CancellationToken,
    grace: Duration,
    session: F,
) where
    F: Fn(TcpStream, SocketAddr, CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tracker = TaskTracker::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    // A child token per session: sessions wait on their own
                    // node instead of all contending for the listener's.
                    tracker.spawn(session(tcp, peer, shutdown.child_token()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: keep serving
                    // the sessions we have.
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
            "shutdown deadline reached with sessions still busy"
        );
    }
}
