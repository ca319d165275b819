//! `KILL [QUERY|CONNECTION] <id>` in a session: the id (the gateway's
//! connection id, or a server thread id on the session's own target)
//! mapped to a session of the same identity (`crate::kill`). `KILL QUERY`
//! is a cancel and needs no policy; `KILL CONNECTION` has passed the
//! policy when it gets here. A session on another target is reached by a
//! connection of its own to that target's server (what the mariadb
//! CLI's Ctrl-C needs: it connects without a database to cancel).
//!
//! It must never reach another identity's thread.

use super::*;

impl Relay<'_> {
    /// Runs a KILL and answers the client.
    pub(super) async fn kill(
        &mut self,
        kill: Result<Kill, ()>,
        seq: u8,
        sbuf: &mut BytesMut,
    ) -> Result<bool, Side> {
        let target = kill
            .map_err(|()| {
                ClientError::new(
                    1235,
                    b"42000",
                    "sqlgate supports only KILL [QUERY|CONNECTION] <connection id>",
                )
            })
            .and_then(|kill| {
                self.kills
                    .target(kill.id, self.pool, &self.session.user)
                    .map(|t| (kill.for_thread(t.thread), t))
                    .ok_or_else(|| {
                        ClientError::new(1094, b"HY000", format!("Unknown thread id: {}", kill.id))
                    })
            });
        let (sql, target) = match target {
            Ok(t) => t,
            Err(err) => {
                self.send(seq.wrapping_add(1), &err.payload()).await?;
                return Ok(true);
            }
        };
        // A statement the session holds (for approval) never reached the
        // server: it is withdrawn there.
        target.held.notify_waiters();
        let mut payload = vec![command::QUERY];
        payload.extend_from_slice(sql.as_bytes());
        if Arc::ptr_eq(&target.pool, self.pool) {
            // The same server: sent on this session's connection.
            let mut raw = Vec::new();
            packet::encode(0, &payload, &mut raw);
            write(&mut self.server.stream.io, &raw)
                .await
                .map_err(|e| Side::Server(e.into()))?;
            self.relay_response(Expect::Results, sbuf).await?;
            return Ok(true);
        }
        // Another target's server: a connection of its own, for this KILL.
        let backend = target.pool.connector().backend().clone();
        let answer = match crate::backend::BackendConn::connect(&backend, target.key).await {
            Ok(mut conn) => {
                let done = conn.simple_command(&payload).await;
                conn.quit().await;
                done.map_err(|e| e.client_error(&backend.target))
            }
            Err(e) => Err(e.client_error(&backend.target)),
        };
        let reply = match answer {
            Ok(()) => ok::payload(ok::STATUS_AUTOCOMMIT),
            Err(err) => err.payload(),
        };
        self.send(seq.wrapping_add(1), &reply).await?;
        Ok(true)
    }
}
