//! An identity provider's signing keys: found through its discovery
//! document, fetched over HTTPS (rustls, with a time limit and a size cap),
//! cached, refetched periodically and when a token names an unknown `kid`
//! (at most once per `min_refresh_secs`, so that tokens with random kids
//! cannot make the gateway hammer the issuer). Keys outlive a failed
//! fetch until `keys_max_age_secs` after the last good one, so a JWKS
//! endpoint outage does not stop logins.
//!
//! This module must never block an async worker (fetches run on the
//! blocking pool) and never let one slow fetch run twice at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

use super::config::Provider;

/// Largest discovery document or key set read.
const MAX_DOCUMENT: u64 = 256 * 1024;
/// Time limit of one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One signing key.
#[derive(Debug)]
struct Key {
    kid: Option<String>,
    /// The key's own `alg`, when it names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Debug, Default)]
struct State {
    keys: Arc<Vec<Key>>,
    /// The last successful fetch.
    fetched: Option<Instant>,
    /// The last attempt, successful or not.
    attempted: Option<Instant>,
    /// How many fetches were tried (for the log and tests).
    fetches: u64,
    /// Why the last attempt failed (`None`: it did not).
    failed: Option<String>,
}

/// Why no key could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The key set (fetched, or refetched just now) has no such key.
    Unknown,
    /// The key names another algorithm than the token.
    AlgorithmMismatch,
    /// No key set could be fetched, and none is cached.
    Unavailable(String),
}

/// A provider's key cache.
#[derive(Debug)]
pub struct Keys {
    provider: Arc<Provider>,
    agent: ureq::Agent,
    state: Mutex<State>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Keys {
    /// An empty cache; nothing is fetched until asked.
    pub fn new(provider: Arc<Provider>) -> Result<Keys, String> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(FETCH_TIMEOUT))
            .https_only(true)
            .max_redirects(3);
        if let Some(ca) = &provider.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(format!("{}: no certificate", ca.display()));
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
                    .build(),
            );
        }
        Ok(Keys {
            provider,
            agent: config.build().into(),
            state: Mutex::new(State::default()),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many fetches were tried so far.
    pub fn fetches(&self) -> u64 {
        self.lock().fetches
    }

    /// The key a token signed with `alg` under `kid` is checked with. A
    /// key found in a stale cache is used at once (and the cache is
    /// refreshed in the background): only a token whose key is not cached
    /// waits for a fetch.
    pub async fn find(
        self: &Arc<Self>,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, KeyError> {
        match self.cached(kid, alg) {
            (Some(found), true) => return found,
            (Some(found), false) => {
                let keys = self.clone();
                tokio::spawn(async move {
                    if let Ok(_one_at_a_time) = keys.refreshing.try_lock() {
                        if keys.may_fetch() {
                            let _ = keys.refresh().await;
                        }
                    }
                });
                return found;
            }
            (None, _) => {}
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Another login may have refreshed while this one waited.
        if let (Some(found), _) = self.cached(kid, alg) {
            return found;
        }
        if self.may_fetch() {
            let _ = self.refresh().await;
        }
        match self.cached(kid, alg).0 {
            Some(found) => found,
            None => {
                let state = self.lock();
                let usable = state
                    .fetched
                    .is_some_and(|f| f.elapsed() <= self.provider.keys_max_age);
                match (&state.failed, usable) {
                    // No key set to look in, and fetching failed.
                    (Some(e), false) => Err(KeyError::Unavailable(e.clone())),
                    _ => Err(KeyError::Unknown),
                }
            }
        }
    }

    /// Whether a fetch may run now (at most one per `min_refresh_secs`).
    fn may_fetch(&self) -> bool {
        self.lock()
            .attempted
            .is_none_or(|a| a.elapsed() >= self.provider.min_refresh)
    }

    /// The cached key, if any (`None`: not there), and whether the cache
    /// is fresh (younger than `refresh_secs`).
    fn cached(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> (Option<Result<DecodingKey, KeyError>>, bool) {
        let state = self.lock();
        let Some(age) = state.fetched.map(|f| f.elapsed()) else {
            return (None, false);
        };
        if age > self.provider.keys_max_age {
            return (None, false);
        }
        let fresh = age <= self.provider.refresh;
        let usable = |k: &&Key| family(alg) == Some(k.key.family());
        let found = match kid {
            // A kid reused across key types: the usable one.
            Some(kid) => state
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .min_by_key(|k| !usable(k)),
            // No kid: only when one key could be meant.
            None => {
                let mut candidates = state.keys.iter().filter(usable);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        };
        let found = found.map(|k| match k.alg {
            Some(a) if a != alg => Err(KeyError::AlgorithmMismatch),
            _ if !usable(&k) => Err(KeyError::AlgorithmMismatch),
            _ => Ok(k.key.clone()),
        });
        (found, fresh)
    }

    /// Fetches the key set now (the caller holds `refreshing`, or is the
    /// periodic refresh).
    async fn refresh(&self) -> Result<(), String> {
        let (agent, provider) = (self.agent.clone(), self.provider.clone());
        {
            let mut state = self.lock();
            state.attempted = Some(Instant::now());
            state.fetches += 1;
        }
        let fetched = tokio::task::spawn_blocking(move || fetch(&agent, &provider))
            .await
            .map_err(|e| format!("key fetch task: {e}"))
            .and_then(|r| r);
        // A set with no key the gateway can use is a failed fetch: it
        // never replaces good keys.
        let fetched = fetched.and_then(|keys| {
            if keys.is_empty() {
                Err("the key set has no usable signing key".to_owned())
            } else {
                Ok(keys)
            }
        });
        match fetched {
            Ok(keys) => {
                tracing::info!(provider = %self.provider.name, keys = keys.len(), "identity provider keys fetched");
                let mut state = self.lock();
                state.keys = Arc::new(keys);
                state.fetched = Some(Instant::now());
                state.failed = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(provider = %self.provider.name, error = %e, "identity provider keys could not be fetched; cached keys stay in use until they age out");
                self.lock().failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Refreshes periodically, forever (spawned once per provider at
    /// start; the first round warms the cache). After a failure it tries
    /// again sooner (every `min_refresh_secs`, at least every 30 s).
    pub async fn keep_fresh(self: Arc<Self>) {
        let retry = self.provider.min_refresh.max(Duration::from_secs(30));
        loop {
            let ok = {
                let _one_at_a_time = self.refreshing.lock().await;
                self.refresh().await.is_ok()
            };
            let next = if ok {
                self.provider.refresh
            } else {
                retry.min(self.provider.refresh)
            };
            tokio::time::sleep(next).await;
        }
    }
}

fn family(alg: Algorithm) -> Option<AlgorithmFamily> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(AlgorithmFamily::Rsa),
        Algorithm::ES256 | Algorithm::ES384 => Some(AlgorithmFamily::Ec),
        Algorithm::EdDSA => Some(AlgorithmFamily::Ed),
        _ => None,
    }
}

/// The provider's key set: from `jwks_uri`, or found through the
/// discovery document (whose `issuer` must be the configured one).
fn fetch(agent: &ureq::Agent, provider: &Provider) -> Result<Vec<Key>, String> {
    let uri = match &provider.jwks_uri {
        Some(u) => u.clone(),
        None => {
            let url = format!(
                "{}/.well-known/openid-configuration",
                provider.issuer.trim_end_matches('/')
            );
            let doc = get_json(agent, &url)?;
            if doc.get("issuer").and_then(|i| i.as_str()) != Some(provider.issuer.as_str()) {
                return Err(format!(
                    "{url}: the discovery document names another issuer"
                ));
            }
            let jwks = doc
                .get("jwks_uri")
                .and_then(|j| j.as_str())
                .ok_or_else(|| format!("{url}: no jwks_uri"))?;
            if !jwks.starts_with("https://") {
                return Err(format!("{url}: jwks_uri is not https"));
            }
            jwks.to_owned()
        }
    };
    let set = get_json(agent, &uri)?;
    let list = set
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| format!("{uri}: no \"keys\" list"))?;
    // Keys of kinds the gateway does not use are skipped, not fatal.
    Ok(list
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|jwk| {
            !matches!(
                jwk.common.public_key_use,
                Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
            )
        })
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            if key.family() == AlgorithmFamily::Hmac {
                return None;
            }
            // A key for another purpose (encryption) is not a signing key.
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(a) => Some(a.to_string().parse::<Algorithm>().ok()?),
            };
            Some(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            })
        })
        .collect())
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<serde_json::Value, String> {
    let mut response = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    if response.status() != 200 {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT)
        .read_json()
        .map_err(|e| format!("{url}: {e}"))
}
