//! Who a session is, once authenticated, in the words both protocol crates
//! share: the gateway user the policy knows, its groups and targets, and
//! how it logged in (a gateway password, or an identity provider's token
//! with the claims that mapped it). The engine makes these; the protocol
//! crates carry them from authentication to routing, the session hooks and
//! the session's end. This module must never hold a credential: not a
//! password, not a token.

use std::sync::Arc;
use std::time::SystemTime;

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The gateway user the policy's rules name.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// The targets it may reach (`*`: every target).
    pub targets: Vec<String>,
    /// Where a MySQL connection that names no database goes.
    pub default_target: Option<String>,
    /// How it authenticated.
    pub login: Login,
}

/// How an identity authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// A gateway user's password (SCRAM, scrambles, or cleartext over TLS).
    Password,
    /// An identity provider's token, validated by the gateway.
    Token(TokenLogin),
}

/// What a validated token said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLogin {
    /// The `[[oidc]]` block that validated it.
    pub provider: String,
    /// Its `iss`.
    pub issuer: String,
    /// Its `sub`.
    pub subject: String,
    /// Its `exp`.
    pub expires: SystemTime,
    /// Whether the session ends when the token expires (`on_expiry =
    /// "end"`).
    pub ends_at_expiry: bool,
    /// The claims that decided the identity, as `(claim, value)`.
    pub matched: Vec<(String, String)>,
}

impl Identity {
    /// A gateway user's identity.
    pub fn password(
        user: &str,
        groups: &[String],
        targets: &[String],
        default_target: Option<&str>,
    ) -> Arc<Identity> {
        Arc::new(Identity {
            user: user.to_owned(),
            groups: groups.to_vec(),
            targets: targets.to_vec(),
            default_target: default_target.map(str::to_owned),
            login: Login::Password,
        })
    }

    /// Whether it may use a target.
    pub fn may_use(&self, target: &str) -> bool {
        self.targets.iter().any(|t| t == "*" || t == target)
    }

    /// When the session must end because its credential expired.
    pub fn ends_at(&self) -> Option<SystemTime> {
        match &self.login {
            Login::Token(t) if t.ends_at_expiry => Some(t.expires),
            _ => None,
        }
    }

    /// How it logged in, in one word (`password`, `oidc`).
    pub fn method(&self) -> &'static str {
        match self.login {
            Login::Password => "password",
            Login::Token(_) => "oidc",
        }
    }
}

/// A token login being validated (the identity provider's keys may have to
/// be fetched first).
pub type Verifying<E> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Arc<Identity>, E>> + Send>>;

/// A session's end token that also fires when its credential expires, so
/// that the relay ends the session at its next idle point exactly as it
/// does for an operator or a shutdown (never mid-result).
#[derive(Debug)]
pub struct ExpiringEnd {
    /// Fires on the parent's end or at expiry.
    pub end: tokio_util::sync::CancellationToken,
    expired: Arc<std::sync::atomic::AtomicBool>,
    timer: Option<tokio::task::JoinHandle<()>>,
}

impl ExpiringEnd {
    /// The end token of a session of `identity`, a child of `parent`.
    pub fn new(identity: &Identity, parent: &tokio_util::sync::CancellationToken) -> Self {
        let expired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let Some(at) = identity.ends_at() else {
            return ExpiringEnd {
                end: parent.clone(),
                expired,
                timer: None,
            };
        };
        let end = parent.child_token();
        let left = at
            .duration_since(SystemTime::now())
            .unwrap_or(std::time::Duration::ZERO);
        let (fire, flag) = (end.clone(), expired.clone());
        let timer = tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(left) => {
                    flag.store(true, std::sync::atomic::Ordering::Release);
                    fire.cancel();
                }
                () = fire.cancelled() => {}
            }
        });
        ExpiringEnd {
            end,
            expired,
            timer: Some(timer),
        }
    }

    /// What stops the expiry timer: a session that changes to an identity
    /// that does not expire (MySQL COM_CHANGE_USER to a password user)
    /// aborts it. `None`: nothing expires.
    pub fn disarm_handle(&self) -> Option<tokio::task::AbortHandle> {
        self.timer
            .as_ref()
            .map(tokio::task::JoinHandle::abort_handle)
    }

    /// Whether the credential's expiry (not an operator, not a shutdown)
    /// ended the session.
    pub fn expired(&self) -> bool {
        self.expired.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for ExpiringEnd {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
    }
}
