//! `[admin]`: where the admin plane listens, and who may use its API.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:9187"   # /metrics, /healthz, /api; absent: none
//! tls_cert = "admin.crt"      # HTTPS, as the listeners' PEM options
//! tls_key = "admin.key"
//! operators = ["dba"]         # groups whose tokens may end live
//!                             # sessions (absent: every token's)
//!
//! [[admin.token]]             # a bearer token of the API, as a person
//! user = "alice"
//! groups = ["dba"]            # approver groups hold for the API too
//! token_env = "SQLGATE_ALICE_TOKEN"   # or token_file = "alice.token"
//! ```
//!
//! It must never default to an address other hosts can reach, and never
//! keep a token itself: only its SHA-256.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::config::check::Problems;

/// Shortest token accepted (a guessable token is no token).
const MIN_TOKEN_LEN: usize = 16;

/// `[admin]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    listen: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    operators: Option<Spanned<Vec<String>>>,
    #[serde(default, rename = "token")]
    tokens: Vec<Spanned<RawToken>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    user: Spanned<String>,
    #[serde(default)]
    groups: Vec<String>,
    token_env: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
}

/// `[admin]`, validated.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Where it listens.
    pub listen: SocketAddr,
    /// HTTPS: its certificate and key (PEM).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Who may use the API.
    pub tokens: Vec<ApiToken>,
    /// Groups whose members may end live sessions (`None`: every token
    /// holder).
    pub operators: Option<Vec<String>>,
}

/// One bearer token of the API and the identity it stands for.
#[derive(Clone)]
pub struct ApiToken {
    /// The person.
    pub user: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// SHA-256 of the token.
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("user", &self.user)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Whether `who` may end other people's live sessions.
    pub fn may_end_sessions(&self, who: &crate::approvals::Identity) -> bool {
        self.operators
            .as_ref()
            .is_none_or(|groups| who.groups.iter().any(|g| groups.contains(g)))
    }

    /// The identity a bearer token stands for. Every token is compared,
    /// each in time independent of where it differs.
    pub fn identity(&self, token: &str) -> Option<crate::approvals::Identity> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for t in &self.tokens {
            let diff = t
                .digest
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(crate::approvals::Identity {
                    user: t.user.clone(),
                    groups: t.groups.clone(),
                });
            }
        }
        found
    }
}

/// Validates `[admin]`: its listen address and tokens.
pub(crate) fn parse(raw: Option<RawAdmin>, base: &Path, p: &mut Problems) -> Option<Admin> {
    let raw = raw?;
    let mut tokens = Vec::new();
    for spanned in raw.tokens {
        let span = spanned.span();
        let t = spanned.into_inner();
        let user = t.user.get_ref().trim().to_owned();
        if user.is_empty() {
            p.at(t.user.span(), "admin.token.user", "must not be empty");
            continue;
        }
        let key = format!("admin.token \"{user}\" token");
        if t.token_env.is_none() && t.token_file.is_none() {
            p.at(span, &key, "needs token_env or token_file");
            continue;
        }
        let Some(secret) = crate::config::check::secret(
            base,
            t.token_env.as_ref(),
            t.token_file.as_ref(),
            &key,
            p,
        ) else {
            continue;
        };
        let token = secret.expose().trim();
        if token.len() < MIN_TOKEN_LEN && !p.offline() {
            let at = t
                .token_env
                .as_ref()
                .map(Spanned::span)
                .or(t.token_file.as_ref().map(Spanned::span))
                .unwrap_or(span);
            p.at(
                at,
                &key,
                format!("is shorter than {MIN_TOKEN_LEN} characters"),
            );
            continue;
        }
        tokens.push(ApiToken {
            user,
            groups: t.groups,
            digest: Sha256::digest(token.as_bytes()).into(),
        });
    }
    let tls = crate::config::check::tls_pair(
        base,
        raw.tls_cert.as_ref(),
        raw.tls_key.as_ref(),
        "admin",
        p,
    );
    if let Some(o) = raw.operators.as_ref().filter(|o| o.get_ref().is_empty()) {
        p.at(
            o.span(),
            "admin.operators",
            "names no group: nobody could end a session (remove the key to let every token)",
        );
    }
    let operators = raw.operators.map(Spanned::into_inner);
    let listen = raw.listen?;
    match listen.get_ref().parse() {
        Ok(addr) => Some(Admin {
            listen: addr,
            tls,
            tokens,
            operators,
        }),
        Err(_) => {
            p.at(
                listen.span(),
                "admin.listen",
                "is not an address (host:port, e.g. \"127.0.0.1:9187\")",
            );
            None
        }
    }
}
