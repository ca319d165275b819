//! Hostile client streams through a real gateway: each input on its own
//! logged-in connection, then the client's side closed; the gateway must
//! close its side promptly, whatever the bytes were.

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long a connection may stay open after the client closed its side.
const DEADLINE: Duration = Duration::from_secs(10);

/// Sends every input on a connection from `login` (at most `at_once`
/// connections at a time), closes the client's side, and returns the
/// indexes of the inputs whose connection the gateway still held open
/// after [`DEADLINE`].
pub async fn stuck_sessions<F, Fut>(inputs: Vec<Vec<u8>>, at_once: usize, login: F) -> Vec<usize>
where
    F: Fn() -> Fut,
    Fut: Future<Output = TcpStream> + Send + 'static,
{
    let mut stuck = Vec::new();
    let mut tasks = JoinSet::new();
    for (i, input) in inputs.into_iter().enumerate() {
        if tasks.len() == at_once {
            if let Some(Some(s)) = tasks.join_next().await.map(Result::unwrap) {
                stuck.push(s);
            }
        }
        let connection = login();
        tasks.spawn(async move {
            let mut s = connection.await;
            // The gateway may close early: a write error is an answer.
            let _ = s.write_all(&input).await;
            let _ = s.shutdown().await;
            let mut rest = Vec::new();
            let ended = tokio::time::timeout(DEADLINE, s.read_to_end(&mut rest))
                .await
                .is_ok();
            (!ended).then_some(i)
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Some(s) = r.unwrap() {
            stuck.push(s);
        }
    }
    stuck
}
