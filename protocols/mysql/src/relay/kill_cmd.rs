//! `KILL [QUERY] <id>` in a session: the id (the gateway's connection id
//! or a server thread id) mapped to a session of the same identity on
//! the same target (`crate::kill`); `KILL QUERY` is a cancel and needs no
//! policy. It must never reach another identity's thread.

use super::*;

impl Relay<'_> {
    /// `KILL QUERY <id>` of a session of the same identity (by gateway id
    /// or server thread id), forwarded as the server thread's.
    pub(super) async fn cancel(
        &mut self,
        kill: Kill,
        seq: u8,
        sbuf: &mut BytesMut,
    ) -> Result<bool, Side> {
        match self.kill_target(Ok(kill)) {
            Ok(rewritten) => {
                write(&mut self.server.stream.io, &rewritten)
                    .await
                    .map_err(|e| Side::Server(e.into()))?;
                self.relay_response(Expect::Results, sbuf).await?;
            }
            Err(err) => self
                .send(seq.wrapping_add(1), &err.payload())
                .await
                .map(|_| ())?,
        }
        Ok(true)
    }

    /// The COM_QUERY to send for a KILL: the server thread behind the
    /// gateway id the client named, or an ERR for the client.
    pub(super) fn kill_target(&self, kill: Result<Kill, ()>) -> Result<Vec<u8>, ClientError> {
        let kill = kill.map_err(|()| {
            ClientError::new(
                1235,
                b"42000",
                "sqlgate supports only KILL [QUERY|CONNECTION] <connection id>",
            )
        })?;
        let thread = u32::try_from(kill.id)
            .ok()
            .and_then(|id| {
                self.kills
                    .target(u64::from(id), self.pool, &self.session.user)
            })
            .ok_or_else(|| {
                ClientError::new(1094, b"HY000", format!("Unknown thread id: {}", kill.id))
            })?;
        let mut payload = vec![command::QUERY];
        payload.extend_from_slice(kill.for_thread(thread).as_bytes());
        let mut raw = Vec::new();
        packet::encode(0, &payload, &mut raw);
        Ok(raw)
    }
}
