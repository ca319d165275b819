//! COM_CHANGE_USER, answered by the gateway itself (it never reaches the
//! server): the new user is checked like a login and the session keeps
//! its target. It must never let a session change to another target.

use super::*;

impl Relay<'_> {
    /// COM_CHANGE_USER, answered by the gateway: the new user is checked
    /// against the gateway's users with the session's nonce, must stay on
    /// the same target, and gets a freshly reset server connection. The
    /// command never reaches the server. `Ok(false)` ends the session (as
    /// a server does after a failed change).
    pub(super) async fn change_user(&mut self, payload: &[u8], seq: u8) -> Result<bool, Side> {
        let mut seq = seq.wrapping_add(1);
        let Some(cu) = change_user::decode(payload, self.client_caps) else {
            let err = ClientError::new(1047, b"08S01", "malformed COM_CHANGE_USER");
            self.send(seq, &err.payload()).await?;
            return Ok(false);
        };
        let known = self
            .hooks
            .user(&cu.user)
            .filter(|u| u.method != AuthMethod::Token);
        if known.is_none() && self.hooks.user(&cu.user).is_some() {
            let err = ClientError::new(
                1045,
                b"28000",
                "COM_CHANGE_USER cannot start a token login: reconnect with the token",
            );
            self.send(seq, &err.payload()).await?;
            return Ok(false);
        }
        let secret = known
            .as_ref()
            .map(|u| u.secret.clone())
            .unwrap_or_else(MysqlSecret::impossible);
        let nonce = self.nonce;
        let verified = match known.as_ref().map(|u| u.method) {
            Some(AuthMethod::Cleartext) if self.session.tls => {
                let mut switch = vec![0xfe];
                switch.extend_from_slice(b"mysql_clear_password\0");
                self.send(seq, &switch).await?;
                let (_, answer) = self.read_whole_command(0).await?;
                seq = seq.wrapping_add(2);
                secret.verify_clear(answer.strip_suffix(&[0]).unwrap_or(&answer))
            }
            Some(AuthMethod::Cleartext) => false,
            _ => match cu.plugin.as_deref() {
                None | Some(b"mysql_native_password") => secret.verify_native(&nonce, &cu.auth),
                Some(b"caching_sha2_password") => {
                    let ok = secret.verify_sha2(&nonce, &cu.auth);
                    if ok {
                        seq = self.send(seq, &[0x01, 0x03]).await?;
                    }
                    ok
                }
                Some(_) => {
                    let mut switch = vec![0xfe];
                    switch.extend_from_slice(b"mysql_native_password\0");
                    switch.extend_from_slice(&nonce);
                    switch.push(0);
                    self.send(seq, &switch).await?;
                    let (_, answer) = self.read_whole_command(0).await?;
                    seq = seq.wrapping_add(2);
                    secret.verify_native(&nonce, &answer)
                }
            },
        };
        let Some(identity) = known.and_then(|u| u.identity).filter(|_| verified) else {
            let err = ClientError::access_denied(&cu.user, &self.session.peer.ip().to_string());
            self.send(seq, &err.payload()).await?;
            return Ok(false);
        };
        let route = match self.hooks.route(
            &identity,
            cu.database.as_deref().or(Some(&self.session.target)),
        ) {
            Ok(r) if Arc::ptr_eq(&r.pool, self.pool) => r,
            Ok(_) => {
                let err = ClientError::new(
                    1044,
                    b"42000",
                    "COM_CHANGE_USER cannot move a session to another target: reconnect",
                );
                self.send(seq, &err.payload()).await?;
                return Ok(false);
            }
            Err(err) => {
                self.send(seq, &err.payload()).await?;
                return Ok(false);
            }
        };
        let database = self.pool.connector().backend().database.clone();
        self.server
            .reset(&database)
            .await
            .map_err(|e| Side::Server(ProtocolError::Io(std::io::Error::other(e.to_string()))))?;
        tracing::info!(session = self.session.id, from = %self.session.user, to = %cu.user, "COM_CHANGE_USER");
        self.session.user = cu.user;
        if identity.ends_at().is_none() {
            // The token that expired the session is no longer its login.
            if let Some(timer) = self.expiry.take() {
                timer.abort();
            }
        }
        self.session.identity = identity;
        self.session.target = route.target;
        self.kills.register(
            self.session.id,
            self.pool.clone(),
            self.server.thread_id,
            &self.session.user,
            self.server.key,
            self.held.clone(),
        );
        self.report_traffic();
        self.judge.ended(SessionEnd::ChangeUser);
        self.params.clear();
        self.last_prepared = None;
        self.judge = self.hooks.session(&self.session);
        // The new identity's session: its own outcomes and records.
        self.outcomes = self.judge.outcomes();
        self.judge.connected(self.server.thread_id, None);
        self.masks = MaskState::of(self.judge.as_mut());
        self.timings = self.judge.timings();
        if self.judge.read_only() {
            self.server.set_read_only().await.map_err(|e| {
                Side::Server(ProtocolError::Io(std::io::Error::other(e.to_string())))
            })?;
        }
        self.send(seq, &ok::payload(ok::STATUS_AUTOCOMMIT)).await?;
        Ok(true)
    }
}
