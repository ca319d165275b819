//! Token logins: an identity provider's token (OIDC ID token, GitHub
//! Actions' workload token, any JWT an issuer signs) as the password, so
//! that the identity provider decides who a client is and the client never
//! holds a database secret. The user name a client sends names an
//! `[[oidc]]` block; the token is checked against that block's issuer
//! (signature with its published keys, `iss`, `aud`, `exp`, `nbf`, `iat`,
//! an allowed algorithm that matches the key), and its claims become a
//! gateway identity by the block's rules.
//!
//! This module must never accept a token whose signature it did not check
//! with the named issuer's key, never write a token to a log, an error or
//! a record, and never tell a client more than a short reason.

pub mod config;
mod keys;
pub mod login;
mod ring_provider;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use sqlgate_net::identity::{Identity, Login, TokenLogin};

use config::Provider;
use keys::{KeyError, Keys};

/// Longest token accepted.
pub const MAX_TOKEN: usize = 64 * 1024;

/// Why a token is not a login. The message is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// Not three base64url parts, or claims that are not JSON.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// Over [`MAX_TOKEN`].
    #[error("the token is too long")]
    TooLong,
    /// `alg` not allowed, or not the key's.
    #[error("the token's signing algorithm is not accepted")]
    Algorithm,
    /// No key of the issuer has its `kid`, even after a refetch.
    #[error("the token's signing key is unknown to the issuer")]
    UnknownKey,
    /// The issuer's keys could not be fetched and none are cached.
    #[error("the identity provider's keys are unavailable; try again later")]
    KeysUnavailable,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is ahead.
    #[error("the token is not yet valid")]
    NotYetValid,
    /// `iat` is ahead.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `aud` names none of the accepted audiences.
    #[error("the token is for another audience")]
    Audience,
    /// `iss` is not the provider's issuer.
    #[error("the token is from another issuer")]
    Issuer,
    /// A claim the gateway requires is missing or of the wrong type.
    #[error("the token lacks a valid \"{0}\" claim")]
    Claim(String),
    /// No identity rule matched and no user claim names one.
    #[error("no identity rule matched the token")]
    NoIdentity,
    /// A user claim named a gateway user: identities from tokens never
    /// borrow a password user's name.
    #[error("the token's user claim names a gateway user")]
    NamesGatewayUser,
}

/// The identity providers of one configuration.
#[derive(Debug, Default)]
pub struct Providers {
    by_name: HashMap<String, (Arc<Provider>, Arc<Keys>)>,
    /// Names of password users, which a user claim must not take.
    static_users: HashSet<String>,
}

impl Providers {
    /// The providers of a configuration (nothing is fetched yet).
    pub fn new(providers: &[Provider], static_users: &[String]) -> anyhow::Result<Providers> {
        ring_provider::install();
        let mut by_name = HashMap::new();
        for p in providers {
            let p = Arc::new(p.clone());
            let keys = Keys::new(p.clone())
                .map_err(|e| anyhow::anyhow!("oidc \"{}\" ca_file: {e}", p.name))?;
            by_name.insert(p.name.clone(), (p, Arc::new(keys)));
        }
        Ok(Providers {
            by_name,
            static_users: static_users.iter().cloned().collect(),
        })
    }

    /// Whether `name` is a token login's user name.
    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Starts each provider's periodic key refresh (the first fetch warms
    /// the cache).
    pub fn keep_fresh(&self) {
        for (_, keys) in self.by_name.values() {
            tokio::spawn(keys.clone().keep_fresh());
        }
    }

    /// How many key fetches a provider has tried.
    pub fn key_fetches(&self, name: &str) -> u64 {
        self.by_name.get(name).map_or(0, |(_, k)| k.fetches())
    }

    /// Validates a token for provider `name` and maps it to an identity.
    /// Every refusal is logged with its detail (never the token).
    pub async fn verify(&self, name: &str, token: &str) -> Result<Arc<Identity>, TokenRefusal> {
        let Some((provider, keys)) = self.by_name.get(name) else {
            return Err(TokenRefusal::Issuer);
        };
        let verified = check(provider, keys, token).await;
        let identity = verified.and_then(|claims| {
            identity_of(provider, &claims, &self.static_users).inspect_err(|_| {
                tracing::warn!(provider = %provider.name, subject = ?claims.get("sub"), claims = %claim_summary(&claims), "token login refused: no identity");
            })
        });
        if let Err(e) = &identity {
            tracing::warn!(provider = %provider.name, reason = %e, "token login refused");
        }
        identity
    }
}

/// The claims of a token whose signature and standard claims hold.
async fn check(
    provider: &Provider,
    keys: &Keys,
    token: &str,
) -> Result<Map<String, Value>, TokenRefusal> {
    let token = token.trim();
    if token.len() > MAX_TOKEN {
        return Err(TokenRefusal::TooLong);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| unreadable_header(token))?;
    if !provider.algorithms.contains(&header.alg) {
        tracing::debug!(provider = %provider.name, alg = ?header.alg, "token algorithm not allowed");
        return Err(TokenRefusal::Algorithm);
    }
    // Refused before any key is looked up (so before any fetch): a token
    // of another issuer. Its claims are unverified here, which is fine
    // for refusing, never for accepting.
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
        .map_err(|_| TokenRefusal::Malformed)?;
    if unverified.claims.get("iss").and_then(Value::as_str) != Some(provider.issuer.as_str()) {
        tracing::debug!(provider = %provider.name, iss = ?unverified.claims.get("iss"), "token of another issuer");
        return Err(TokenRefusal::Issuer);
    }
    let key = keys
        .find(header.kid.as_deref(), header.alg)
        .await
        .map_err(|e| {
            tracing::debug!(provider = %provider.name, kid = ?header.kid, error = ?e, "no key for the token");
            match e {
                KeyError::Unknown => TokenRefusal::UnknownKey,
                KeyError::AlgorithmMismatch => TokenRefusal::Algorithm,
                KeyError::Unavailable(_) => TokenRefusal::KeysUnavailable,
            }
        })?;
    let validation = validation(provider, header.alg);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(
        |e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenRefusal::Expired,
            ErrorKind::ImmatureSignature => TokenRefusal::NotYetValid,
            ErrorKind::InvalidAudience => TokenRefusal::Audience,
            ErrorKind::InvalidIssuer => TokenRefusal::Issuer,
            ErrorKind::InvalidSignature => TokenRefusal::Signature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                TokenRefusal::Algorithm
            }
            ErrorKind::MissingRequiredClaim(c) => TokenRefusal::Claim(c.clone()),
            _ => TokenRefusal::Malformed,
        },
    )?;
    let claims = data.claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match claims.get("iat") {
        None => {}
        Some(Value::Number(n)) => {
            let iat = n.as_f64().unwrap_or(f64::MAX);
            if iat > (now + provider.leeway.as_secs()) as f64 {
                return Err(TokenRefusal::IssuedInFuture);
            }
        }
        Some(_) => return Err(TokenRefusal::Claim("iat".to_owned())),
    }
    if !matches!(claims.get("sub"), Some(Value::String(s)) if !s.is_empty()) {
        return Err(TokenRefusal::Claim("sub".to_owned()));
    }
    if !matches!(claims.get("exp"), Some(Value::Number(_))) {
        return Err(TokenRefusal::Claim("exp".to_owned()));
    }
    Ok(claims)
}

/// Why a header did not parse: an algorithm the token library does not
/// even name (`none`, say) is an algorithm refusal, anything else a
/// malformed token.
fn unreadable_header(token: &str) -> TokenRefusal {
    use base64::Engine as _;
    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned));
    match alg {
        Some(_) => TokenRefusal::Algorithm,
        None => TokenRefusal::Malformed,
    }
}

fn validation(provider: &Provider, alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = provider.leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_audience(&provider.audiences);
    v.set_issuer(&[&provider.issuer]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

/// The gateway identity a token's claims map to: the first rule whose
/// claims all match, else the user claim.
fn identity_of(
    provider: &Provider,
    claims: &Map<String, Value>,
    static_users: &HashSet<String>,
) -> Result<Arc<Identity>, TokenRefusal> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    let expires = claims
        .get("exp")
        .and_then(Value::as_u64)
        .map_or(UNIX_EPOCH, |s| UNIX_EPOCH + Duration::from_secs(s));
    let login = |matched: Vec<(String, String)>| {
        Login::Token(TokenLogin {
            provider: provider.name.clone(),
            issuer: text("iss").to_owned(),
            subject: text("sub").to_owned(),
            expires,
            ends_at_expiry: provider.end_at_expiry,
            matched,
        })
    };
    let default_target = |targets: &[String]| {
        provider
            .default_target
            .clone()
            .filter(|d| targets.iter().any(|t| t == "*" || t == d))
    };
    for rule in &provider.identities {
        let matched: Option<Vec<(String, String)>> = rule
            .when
            .iter()
            .map(|(claim, values)| {
                claims
                    .get(claim)
                    .and_then(|v| matching_value(v, values))
                    .map(|v| (claim.clone(), v))
            })
            .collect();
        if let Some(matched) = matched {
            return Ok(Arc::new(Identity {
                user: rule.user.clone(),
                groups: rule.groups.clone(),
                default_target: default_target(&rule.targets),
                targets: rule.targets.clone(),
                login: login(matched),
            }));
        }
    }
    let Some(user_claim) = &provider.user_claim else {
        return Err(TokenRefusal::NoIdentity);
    };
    let user = match claims.get(user_claim) {
        Some(Value::String(u)) if !u.is_empty() => u.clone(),
        _ => return Err(TokenRefusal::NoIdentity),
    };
    if static_users.contains(&user) {
        return Err(TokenRefusal::NamesGatewayUser);
    }
    let groups: Vec<String> = match provider.groups_claim.as_ref().and_then(|g| claims.get(g)) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(g)) => vec![g.clone()],
        _ => Vec::new(),
    };
    let mut matched = vec![(user_claim.clone(), user.clone())];
    if let Some(g) = &provider.groups_claim {
        matched.push((g.clone(), groups.join(",")));
    }
    Ok(Arc::new(Identity {
        user,
        groups,
        default_target: default_target(&provider.targets),
        targets: provider.targets.clone(),
        login: login(matched),
    }))
}

/// The claim value that one of a rule's values matches (an array claim
/// matches when one of its elements does).
fn matching_value(claim: &Value, values: &[String]) -> Option<String> {
    match claim {
        Value::String(s) => values.contains(s).then(|| s.clone()),
        Value::Number(n) => {
            let s = n.to_string();
            values.contains(&s).then_some(s)
        }
        Value::Bool(b) => {
            let s = b.to_string();
            values.contains(&s).then_some(s)
        }
        Value::Array(items) => items.iter().find_map(|i| match i {
            Value::Array(_) => None,
            one => matching_value(one, values),
        }),
        _ => None,
    }
}

/// The claims a refusal log shows: names and short scalar values (never a
/// whole token; tokens carry no secret in their claims, but values are
/// capped so that a log line stays a line).
fn claim_summary(claims: &Map<String, Value>) -> String {
    claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let s: String = s.chars().take(80).collect();
            format!("{k}={s}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
