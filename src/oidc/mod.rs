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
    /// A claim the provider requires of every token is missing or has
    /// another value.
    #[error("the token's \"{0}\" claim is not one this gateway accepts")]
    Required(String),
    /// No identity rule matched and no user claim names one.
    #[error("no identity rule matched the token")]
    NoIdentity,
    /// A user claim named a gateway user, a rule's identity or a
    /// provider: identities from claims never borrow another's name.
    #[error("the token's user claim names a reserved identity")]
    NamesGatewayUser,
    /// The user claim is not a name (control characters, over 256 bytes),
    /// or an email claim is not verified.
    #[error("the token's user claim is not usable")]
    UnusableUser,
}

/// The identity providers of one configuration.
#[derive(Debug, Default)]
pub struct Providers {
    by_name: HashMap<String, (Arc<Provider>, Arc<Keys>)>,
    /// Names a user claim must not take: password users', rule users'
    /// and providers'.
    reserved: HashSet<String>,
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
        let reserved = static_users
            .iter()
            .cloned()
            .chain(providers.iter().map(|p| p.name.clone()))
            .chain(
                providers
                    .iter()
                    .flat_map(|p| p.identities.iter().map(|r| r.user.clone())),
            )
            .collect();
        Ok(Providers { by_name, reserved })
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
            identity_of(provider, &claims, &self.reserved)
                .map_err(|e| Refused::new(e, format!("claims: {}", claim_summary(&claims))))
        });
        identity.map_err(|r| {
            tracing::warn!(provider = %provider.name, reason = %r.reason, detail = ?r.detail, "token login refused");
            r.reason
        })
    }
}

/// A refusal with what the log says about it (never the token).
struct Refused {
    reason: TokenRefusal,
    detail: String,
}

impl Refused {
    fn new(reason: TokenRefusal, detail: impl Into<String>) -> Self {
        Refused {
            reason,
            detail: detail.into(),
        }
    }
}

/// The claims of a token whose signature and standard claims hold.
async fn check(
    provider: &Provider,
    keys: &Arc<Keys>,
    token: &str,
) -> Result<Map<String, Value>, Refused> {
    let token = token.trim();
    if token.len() > MAX_TOKEN {
        return Err(Refused::new(
            TokenRefusal::TooLong,
            format!("{} bytes", token.len()),
        ));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| Refused::new(unreadable_header(token), format!("header: {e}")))?;
    if !provider.algorithms.contains(&header.alg) {
        return Err(Refused::new(
            TokenRefusal::Algorithm,
            format!("alg {:?} is not in the provider's algorithms", header.alg),
        ));
    }
    // Refused before any key is looked up (so before any fetch): a token
    // of another issuer. Its claims are unverified here, which is fine
    // for refusing, never for accepting.
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token)
        .map_err(|e| Refused::new(TokenRefusal::Malformed, format!("claims: {e}")))?;
    // What the log says of a refused token: its header and its
    // (unverified) standard claims.
    let about = |what: &str| {
        let c = &unverified.claims;
        format!(
            "{what}; alg {:?} kid {:?} iss {:?} aud {:?} sub {:?} exp {:?} nbf {:?} iat {:?}",
            header.alg,
            header.kid,
            c.get("iss"),
            c.get("aud"),
            c.get("sub"),
            c.get("exp"),
            c.get("nbf"),
            c.get("iat")
        )
    };
    if unverified.claims.get("iss").and_then(Value::as_str) != Some(provider.issuer.as_str()) {
        return Err(Refused::new(TokenRefusal::Issuer, about("another issuer")));
    }
    let key = keys
        .find(header.kid.as_deref(), header.alg)
        .await
        .map_err(|e| {
            let reason = match &e {
                KeyError::Unknown => TokenRefusal::UnknownKey,
                KeyError::AlgorithmMismatch => TokenRefusal::Algorithm,
                KeyError::Unavailable(_) => TokenRefusal::KeysUnavailable,
            };
            Refused::new(reason, about(&format!("key: {e:?}")))
        })?;
    let validation = validation(provider, header.alg);
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
            let reason = match e.kind() {
                ErrorKind::ExpiredSignature => TokenRefusal::Expired,
                ErrorKind::ImmatureSignature => TokenRefusal::NotYetValid,
                ErrorKind::InvalidAudience => TokenRefusal::Audience,
                ErrorKind::InvalidIssuer => TokenRefusal::Issuer,
                ErrorKind::InvalidSignature => TokenRefusal::Signature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenRefusal::Algorithm
                }
                ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                    TokenRefusal::Claim(c.clone())
                }
                _ => TokenRefusal::Malformed,
            };
            Refused::new(reason, about(&e.to_string()))
        })?;
    let claims = data.claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claim = |c: &str| Refused::new(TokenRefusal::Claim(c.to_owned()), about("claim"));
    match claims.get("iat") {
        None => {}
        Some(Value::Number(n)) => {
            let iat = n.as_f64().unwrap_or(f64::MAX);
            if iat > (now + provider.leeway.as_secs()) as f64 {
                return Err(Refused::new(TokenRefusal::IssuedInFuture, about("iat")));
            }
        }
        Some(_) => return Err(claim("iat")),
    }
    if !matches!(claims.get("sub"), Some(Value::String(s)) if !s.is_empty()) {
        return Err(claim("sub"));
    }
    if expiry(&claims).is_none() {
        return Err(claim("exp"));
    }
    for (c, values) in &provider.require {
        if claims
            .get(c)
            .and_then(|v| matching_value(v, values))
            .is_none()
        {
            return Err(Refused::new(
                TokenRefusal::Required(c.clone()),
                about(&format!("required claim {c} = {values:?}")),
            ));
        }
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
    reserved: &HashSet<String>,
) -> Result<Arc<Identity>, TokenRefusal> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    // (A token without a usable exp never gets here: `check` refuses it.)
    let expires = expiry(claims).unwrap_or(UNIX_EPOCH);
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
    if user.len() > 256 || user.chars().any(char::is_control) {
        return Err(TokenRefusal::UnusableUser);
    }
    // An email names a person only once the issuer has verified it.
    if user_claim == "email" && claims.get("email_verified") != Some(&Value::Bool(true)) {
        return Err(TokenRefusal::UnusableUser);
    }
    if reserved.contains(&user) {
        return Err(TokenRefusal::NamesGatewayUser);
    }
    let allowed = |g: &String| {
        !g.chars().any(char::is_control)
            && provider
                .groups_allowed
                .as_ref()
                .is_none_or(|list| list.contains(g))
    };
    let groups: Vec<String> = match provider.groups_claim.as_ref().and_then(|g| claims.get(g)) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|g| g.as_str().map(str::to_owned))
            .filter(allowed)
            .collect(),
        Some(Value::String(g)) => std::iter::once(g.clone()).filter(allowed).collect(),
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

/// A token's `exp` as a time (whole seconds, as jsonwebtoken reads it;
/// `None` when it is not a number or out of range).
fn expiry(claims: &Map<String, Value>) -> Option<SystemTime> {
    let secs = claims.get("exp")?.as_f64()?;
    if !(0.0..=1e12).contains(&secs) {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
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
