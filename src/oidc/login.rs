//! `sqlgate login`: a token for a person or an agent on a laptop, by the
//! OAuth 2.0 device authorization grant (RFC 8628) against the identity
//! provider: the command prints a URL and a code, the person approves in a
//! browser, and the command prints the ID token on stdout, for
//! `PGPASSWORD=$(sqlgate login ...)`. Tokens are cached (0600, under
//! `$XDG_CACHE_HOME/sqlgate/tokens`) and reused while they have more than
//! a minute left, so scripts can call it before every connection.
//!
//! This module never sends the token anywhere but stdout and the cache
//! file, and never talks to anything but the issuer's own endpoints.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::Digest;

/// What `sqlgate login` was asked.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    /// The issuer (`https://...`), whose discovery document names the
    /// device and token endpoints.
    pub issuer: String,
    /// The public client registered for sqlgate at the provider.
    pub client_id: String,
    /// Scopes asked for (`openid` at least).
    pub scope: String,
    /// An `audience` parameter, for providers that take one.
    pub audience: Option<String>,
    /// Roots for the issuer's TLS (default: the public web roots).
    pub ca_file: Option<PathBuf>,
    /// Skip the cache (always ask the person).
    pub fresh: bool,
}

/// Why no token came.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The issuer could not be reached or answered nonsense.
    #[error("{0}")]
    Issuer(String),
    /// The person denied the request, or it expired.
    #[error("the login was not completed: {0}")]
    NotCompleted(String),
    /// The cache could not be written.
    #[error("token cache: {0}")]
    Cache(String),
}

/// Runs the device flow (or returns a cached token); instructions go to
/// `prompt`.
pub fn login(req: &LoginRequest, prompt: &mut dyn Write) -> Result<String, LoginError> {
    let cache = cache_path(req);
    if !req.fresh {
        if let Some(token) = cache.as_ref().and_then(|p| cached(p)) {
            return Ok(token);
        }
    }
    let agent = agent(req)?;
    let discovery = get_json(
        &agent,
        &format!(
            "{}/.well-known/openid-configuration",
            req.issuer.trim_end_matches('/')
        ),
    )?;
    if discovery.get("issuer").and_then(Value::as_str) != Some(req.issuer.as_str()) {
        return Err(LoginError::Issuer(
            "the discovery document names another issuer".to_owned(),
        ));
    }
    let endpoint = |name: &str| {
        discovery
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| LoginError::Issuer(format!("the issuer offers no {name}")))
    };
    let (device_endpoint, token_endpoint) = (
        endpoint("device_authorization_endpoint")?,
        endpoint("token_endpoint")?,
    );
    let mut form = vec![
        ("client_id", req.client_id.as_str()),
        ("scope", req.scope.as_str()),
    ];
    if let Some(a) = &req.audience {
        form.push(("audience", a.as_str()));
    }
    let device = post_form(&agent, &device_endpoint, &form)?
        .map_err(|e| LoginError::Issuer(format!("device authorization refused: {e}")))?;
    let text = |k: &str| device.get(k).and_then(Value::as_str).map(str::to_owned);
    let device_code = text("device_code")
        .ok_or_else(|| LoginError::Issuer("no device_code in the answer".to_owned()))?;
    let user_code = text("user_code").unwrap_or_default();
    let url = text("verification_uri_complete")
        .or_else(|| text("verification_uri"))
        .or_else(|| text("verification_url"))
        .ok_or_else(|| LoginError::Issuer("no verification_uri in the answer".to_owned()))?;
    let _ = writeln!(
        prompt,
        "To sign in, open {url}\nand enter the code {user_code}"
    );
    let expires = Instant::now()
        + Duration::from_secs(
            device
                .get("expires_in")
                .and_then(Value::as_u64)
                .unwrap_or(600),
        );
    let mut interval =
        Duration::from_secs(device.get("interval").and_then(Value::as_u64).unwrap_or(5));
    loop {
        if Instant::now() > expires {
            return Err(LoginError::NotCompleted("the code expired".to_owned()));
        }
        let answer = post_form(
            &agent,
            &token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.as_str()),
                ("client_id", req.client_id.as_str()),
            ],
        )?;
        match answer {
            Ok(tokens) => {
                let token = tokens
                    .get("id_token")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        LoginError::Issuer(
                            "the issuer returned no id_token (is \"openid\" in the scope?)"
                                .to_owned(),
                        )
                    })?
                    .to_owned();
                if let Some(p) = &cache {
                    store(p, &token)?;
                }
                return Ok(token);
            }
            Err(e) if e == "authorization_pending" => {}
            Err(e) if e == "slow_down" => interval += Duration::from_secs(5),
            Err(e) => return Err(LoginError::NotCompleted(e)),
        }
        // The pace the issuer asked for (RFC 8628, 3.5).
        std::thread::sleep(interval);
    }
}

fn agent(req: &LoginRequest) -> Result<ureq::Agent, LoginError> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(ca) = &req.ca_file {
        let pem =
            std::fs::read(ca).map_err(|e| LoginError::Issuer(format!("{}: {e}", ca.display())))?;
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(certs)))
                .build(),
        );
    }
    Ok(config.build().into())
}

fn get_json(agent: &ureq::Agent, url: &str) -> Result<Value, LoginError> {
    let mut r = agent
        .get(url)
        .call()
        .map_err(|e| LoginError::Issuer(format!("{url}: {e}")))?;
    if r.status() != 200 {
        return Err(LoginError::Issuer(format!("{url}: HTTP {}", r.status())));
    }
    r.body_mut()
        .with_config()
        .limit(256 * 1024)
        .read_json()
        .map_err(|e| LoginError::Issuer(format!("{url}: {e}")))
}

/// A form POST: `Ok(body)` on 200, `Err(error code)` on an OAuth error.
fn post_form(
    agent: &ureq::Agent,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Result<Value, String>, LoginError> {
    let mut r = agent
        .post(url)
        .send_form(form.iter().copied())
        .map_err(|e| LoginError::Issuer(format!("{url}: {e}")))?;
    let status = r.status();
    let body: Value = r
        .body_mut()
        .with_config()
        .limit(256 * 1024)
        .read_json()
        .map_err(|e| LoginError::Issuer(format!("{url}: HTTP {status}: {e}")))?;
    if status == 200 {
        return Ok(Ok(body));
    }
    Ok(Err(body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_owned()))
}

/// Where this request's token is cached.
fn cache_path(req: &LoginRequest) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let key = sha2::Sha256::digest(format!(
        "{}\n{}\n{}\n{}",
        req.issuer,
        req.client_id,
        req.scope,
        req.audience.as_deref().unwrap_or("")
    ));
    Some(
        base.join("sqlgate/tokens")
            .join(format!("{}.jwt", hex::encode(&key[..12]))),
    )
}

/// A cached token with more than a minute left.
fn cached(path: &std::path::Path) -> Option<String> {
    let token = std::fs::read_to_string(path).ok()?.trim().to_owned();
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Map<String, Value>>(&token)
        .ok()?
        .claims;
    let exp = claims.get("exp")?.as_u64()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    (exp > now + 60).then_some(token)
}

fn store(path: &std::path::Path, token: &str) -> Result<(), LoginError> {
    use std::os::unix::fs::OpenOptionsExt;
    let cache_err = |e: std::io::Error| LoginError::Cache(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cache_err)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(cache_err)?;
    f.write_all(token.as_bytes()).map_err(cache_err)
}
