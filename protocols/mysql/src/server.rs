//! The accept loop of a MySQL listener (graceful shutdown: stop
//! accepting, end each session at its next idle point with ERR 1053, give
//! busy sessions until the deadline).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::frontend::Gateway;

/// Accepts clients until `shutdown` fires, then waits up to `grace` for
/// the sessions to finish.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    sqlgate_net::accept::serve(listener, shutdown, grace, move |tcp, peer, token| {
        gateway.clone().handle(tcp, peer, token)
    })
    .await
}
