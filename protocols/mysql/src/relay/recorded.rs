//! What the relay reports for the recording: result samples (as the
//! client received them), each COM_STMT_EXECUTE with its parameters
//! (durable before it runs when it may change anything), outcomes, and
//! the session's traffic. It must never report a row before its masks
//! were applied, nor forward an execution whose durable record failed.

use super::*;

impl Relay<'_> {
    /// A sampler of the next response's result sets, if the sink keeps
    /// samples (`auto_rows`: rows pass unmasked and are sampled as they
    /// pass).
    pub(super) fn tap(&self, auto_rows: bool) -> Option<crate::sample::Tap> {
        let limits = self.outcomes.as_ref()?.sample_limits();
        let binary = matches!(self.command, command::STMT_EXECUTE | command::STMT_FETCH);
        crate::sample::Tap::new(limits, binary, auto_rows)
    }

    /// Forwards a COM_STMT_EXECUTE; a recording session's is reported to
    /// the judge with its parameters (read whole up to 1 MiB).
    pub(super) async fn execute(&mut self, len: usize) -> Result<Option<Expect>, Side> {
        if !self.judge.records_executions() {
            return self.pass_command(Some(Expect::Results)).await;
        }
        let most = MAX_RECORDED_EXECUTE.min(self.limits.max_statement_len);
        if len + HEADER_LEN > most || len < 5 {
            if len >= 5 {
                let id = self.statement_id().await?;
                let id = self.prepared_id(id);
                if let Some(ticket) = self.judge.executed(id, None).into_ticket() {
                    if let Err(err) = self.watching_client(ticket).await? {
                        let seq = self.cbuf[3];
                        self.discard_command().await?;
                        self.send(seq.wrapping_add(1), &err.payload()).await?;
                        return Ok(None);
                    }
                }
            }
            return self.pass_command(Some(Expect::Results)).await;
        }
        let (raw, payload) = self.read_whole_command(len).await?;
        let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let id = self.prepared_id(id);
        let parameters = match self.params.get_mut(&id) {
            Some((count, types)) => {
                match crate::sample::parameter_values(&payload[1..], *count, types.as_ref()) {
                    Some((values, fresh)) => {
                        if fresh.is_some() {
                            *types = fresh;
                        }
                        Some(values)
                    }
                    None => None,
                }
            }
            None => None,
        };
        // An execution that can change anything is durable before it is
        // forwarded (one held for approval waits for it); when it cannot
        // be, it is refused here.
        if let Some(ticket) = self.judge.executed(id, parameters).into_ticket() {
            if let Err(err) = self.watching_client(ticket).await? {
                let seq = raw.get(3).copied().unwrap_or(0);
                self.send(seq.wrapping_add(1), &err.payload()).await?;
                return Ok(None);
            }
        }
        write(&mut self.server.stream.io, &raw)
            .await
            .map_err(|e| Side::Server(e.into()))?;
        Ok(Some(Expect::Results))
    }

    /// A statement id as the server reads it (MariaDB's -1: the last
    /// statement prepared).
    pub(super) fn prepared_id(&self, id: u32) -> u32 {
        match (id, self.last_prepared) {
            (u32::MAX, Some(last)) => last,
            _ => id,
        }
    }

    /// Hands the session's traffic so far to its sink.
    pub(super) fn report_traffic(&mut self) {
        let (read, written) = self.traffic.take();
        if let Some(sink) = &self.outcomes {
            sink.traffic(read, written);
        }
    }

    /// Hands a finished response's outcomes to the sink; where masking
    /// applies, error messages as the masked path scrubs them.
    pub(super) fn report(&mut self, response: &mut Response) {
        if let Some((id, count)) = response.prepared.take() {
            // Executions of it are recorded with its text and parameters.
            if self.judge.records_executions() {
                if self.params.len() >= MAX_PREPARED && !self.params.contains_key(&id) {
                    self.params.clear();
                }
                self.params.insert(id, (usize::from(count), None));
                self.judge.prepared_as(id);
            }
            self.last_prepared = Some(id);
        }
        let Some(sink) = &self.outcomes else {
            return;
        };
        for mut o in response.take_outcomes() {
            // Where masking applies, a message may quote a masked value
            // (or, from code, say anything): only its code is kept.
            if let (true, sqlgate_net::outcome::Outcome::Failed { message, .. }) =
                (self.masks.on, &mut o)
            {
                let hidden = sqlgate_net::scrub::scrub_message(
                    message.as_bytes(),
                    sqlgate_net::scrub::Scrub::All,
                );
                *message = String::from_utf8_lossy(&hidden).into_owned();
            }
            sink.outcome(&o);
        }
    }
}
