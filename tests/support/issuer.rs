//! A real OIDC issuer for tests: an HTTPS server (its own self-signed
//! certificate) with a discovery document and a JWKS, RSA keys generated
//! per run (by `openssl`, as ring cannot make RSA keys) and EC keys (by
//! ring), rotation, an outage switch, and a count of key-set fetches.
//! Tokens are signed here by hand, so tests can also make the bad ones an
//! attacker would (`alg: none`, HS256 keyed with the public key, tampered
//! payloads).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

/// One signing key of the issuer.
pub enum SigningKey {
    Rsa {
        kid: String,
        pair: RsaKeyPair,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        kid: String,
        pair: EcdsaKeyPair,
    },
}

impl SigningKey {
    fn kid(&self) -> &str {
        match self {
            SigningKey::Rsa { kid, .. } | SigningKey::Ec { kid, .. } => kid,
        }
    }

    fn jwk(&self) -> Value {
        match self {
            SigningKey::Rsa { kid, n, e, .. } => json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": B64.encode(n), "e": B64.encode(e),
            }),
            SigningKey::Ec { kid, pair } => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": kid,
                    "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
                })
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// Published keys.
    keys: Vec<Arc<SigningKey>>,
    /// Keys that sign but are not (or no longer) published.
    unpublished: Vec<Arc<SigningKey>>,
    jwks_fetches: u64,
    down: bool,
    /// The claims of the ID token a device login gets once approved.
    device_login: Option<Value>,
    /// Polls of the token endpoint.
    token_polls: u64,
}

/// A running issuer.
pub struct Issuer {
    /// `https://127.0.0.1:<port>`: the `iss` of its tokens.
    pub url: String,
    /// Its certificate, the root the gateway's `ca_file` names.
    pub ca: PathBuf,
    state: Arc<Mutex<State>>,
    dir: PathBuf,
    next_kid: Mutex<u32>,
    _shutdown: tokio_util::sync::DropGuard,
}

impl Issuer {
    /// Starts an issuer with one RSA and one EC key, files under `dir`.
    pub async fn start(dir: &Path) -> Issuer {
        sqlgate::install_crypto_provider();
        std::fs::create_dir_all(dir).unwrap();
        let names = vec!["127.0.0.1".to_owned()];
        let (crt, key) = sqlgate::certs::self_signed(&dir.join("issuer-tls"), &names).unwrap();
        let tls = sqlgate_postgres::tls::server_config(&crt, &key).unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", tcp.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(State::default()));
        let app = router(url.clone(), state.clone());
        let listener = sqlgate::admin::tls::TlsListener::new(tcp, tls).unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .unwrap();
        });
        let issuer = Issuer {
            url,
            ca: crt,
            state,
            dir: dir.to_owned(),
            next_kid: Mutex::new(0),
            _shutdown: shutdown.drop_guard(),
        };
        issuer.add_rsa_key(true);
        issuer.add_ec_key();
        issuer
    }

    fn kid(&self, prefix: &str) -> String {
        let mut n = self.next_kid.lock().unwrap();
        *n += 1;
        format!("{prefix}-{}", *n)
    }

    /// A new RSA key (published or not); its kid.
    pub fn add_rsa_key(&self, publish: bool) -> String {
        let der = self.dir.join("rsa.der");
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-outform",
                "DER",
                "-out",
            ])
            .arg(&der)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // OpenSSL 3 writes DER keys as PKCS#1 (RSAPrivateKey).
        let pair = RsaKeyPair::from_der(&std::fs::read(&der).unwrap()).unwrap();
        let components: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let kid = self.kid("rsa");
        let key = Arc::new(SigningKey::Rsa {
            kid: kid.clone(),
            pair,
            n: components.n,
            e: components.e,
        });
        let mut state = self.state.lock().unwrap();
        if publish {
            state.keys.insert(0, key);
        } else {
            state.unpublished.push(key);
        }
        kid
    }

    fn add_ec_key(&self) -> String {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let kid = self.kid("ec");
        self.state
            .lock()
            .unwrap()
            .keys
            .push(Arc::new(SigningKey::Ec {
                kid: kid.clone(),
                pair,
            }));
        kid
    }

    /// Rotation: a new RSA key, published first; the old ones stay
    /// published. Its kid.
    pub fn rotate(&self) -> String {
        self.add_rsa_key(true)
    }

    /// Makes the key-set endpoint fail (503) or recover.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// How many times the key set was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.state.lock().unwrap().jwks_fetches
    }

    /// Standard claims for `audience`, valid from now for `secs` seconds,
    /// plus `extra`.
    pub fn claims(&self, audience: &str, subject: &str, secs: i64, extra: Value) -> Value {
        let now = now();
        let mut c = json!({
            "iss": self.url, "aud": audience, "sub": subject,
            "iat": now, "nbf": now, "exp": now + secs,
        });
        if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
            c.extend(extra);
        }
        c
    }

    fn key(&self, kid: &str) -> Arc<SigningKey> {
        let state = self.state.lock().unwrap();
        state
            .keys
            .iter()
            .chain(&state.unpublished)
            .find(|k| k.kid() == kid)
            .cloned()
            .unwrap_or_else(|| panic!("no key {kid}"))
    }

    /// The kid of the newest published RSA key.
    pub fn rsa_kid(&self) -> String {
        let state = self.state.lock().unwrap();
        state
            .keys
            .iter()
            .find(|k| matches!(***k, SigningKey::Rsa { .. }))
            .map(|k| k.kid().to_owned())
            .unwrap()
    }

    /// The kid of the EC key.
    pub fn ec_kid(&self) -> String {
        let state = self.state.lock().unwrap();
        state
            .keys
            .iter()
            .find(|k| matches!(***k, SigningKey::Ec { .. }))
            .map(|k| k.kid().to_owned())
            .unwrap()
    }

    /// A token of `claims` signed RS256 by the newest RSA key.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&self.rsa_kid(), claims)
    }

    /// A token of `claims` padded to several KB (as some providers'
    /// tokens are), signed by the newest RSA key.
    pub fn long_token(&self, claims: &Value) -> String {
        let mut claims = claims.clone();
        claims["padding"] = Value::String("x".repeat(6000));
        let token = self.token(&claims);
        assert!(token.len() > 8000, "a token of several KB: {}", token.len());
        token
    }

    /// A token of `claims` signed by key `kid` (RS256 or ES256 by its kind).
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        sign(&self.key(kid), claims)
    }

    /// Device logins are approved (once the client has polled once) with
    /// an ID token of these claims.
    pub fn approve_device_logins(&self, claims: Value) {
        self.state.lock().unwrap().device_login = Some(claims);
    }

    /// How many times the token endpoint was polled.
    pub fn token_polls(&self) -> u64 {
        self.state.lock().unwrap().token_polls
    }

    /// `alg: none`: no signature at all.
    pub fn unsigned(&self, claims: &Value) -> String {
        let message = message(&json!({"alg": "none", "typ": "JWT"}), claims);
        format!("{message}.")
    }

    /// HS256 keyed with the RSA key's public parts as published (the
    /// algorithm-confusion attack: a verifier that takes the key's bytes
    /// as an HMAC secret accepts it).
    pub fn hs256_with_public_key(&self, claims: &Value) -> String {
        let kid = self.rsa_kid();
        let secret = match &*self.key(&kid) {
            SigningKey::Rsa { pair, .. } => pair.public().as_ref().to_vec(),
            SigningKey::Ec { .. } => unreachable!(),
        };
        let message = message(&json!({"alg": "HS256", "typ": "JWT", "kid": kid}), claims);
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, message.as_bytes());
        format!("{message}.{}", B64.encode(tag.as_ref()))
    }

    /// A valid token whose payload is then replaced (the signature kept).
    pub fn tampered(&self, claims: &Value, forged: &Value) -> String {
        let token = self.token(claims);
        let parts: Vec<&str> = token.split('.').collect();
        let payload = B64.encode(serde_json::to_vec(forged).unwrap());
        format!("{}.{payload}.{}", parts[0], parts[2])
    }
}

fn sign(key: &SigningKey, claims: &Value) -> String {
    let alg = match key {
        SigningKey::Rsa { .. } => "RS256",
        SigningKey::Ec { .. } => "ES256",
    };
    let message = message(&json!({"alg": alg, "typ": "JWT", "kid": key.kid()}), claims);
    let rng = SystemRandom::new();
    let sig = match key {
        SigningKey::Rsa { pair, .. } => {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                message.as_bytes(),
                &mut sig,
            )
            .unwrap();
            sig
        }
        SigningKey::Ec { pair, .. } => pair
            .sign(&rng, message.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
    };
    format!("{message}.{}", B64.encode(sig))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn message(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        B64.encode(serde_json::to_vec(header).unwrap()),
        B64.encode(serde_json::to_vec(claims).unwrap())
    )
}

fn router(url: String, state: Arc<Mutex<State>>) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let discovery = json!({
        "issuer": url,
        "jwks_uri": format!("{url}/jwks"),
        "device_authorization_endpoint": format!("{url}/device"),
        "token_endpoint": format!("{url}/token"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    });
    let device_url = format!("{url}/activate");
    let token_state = state.clone();
    axum::Router::new()
        .route(
            "/device",
            axum::routing::post(move |body: String| {
                let device_url = device_url.clone();
                async move {
                    if !body.contains("client_id=sqlgate-cli") || !body.contains("openid") {
                        return Err(StatusCode::BAD_REQUEST);
                    }
                    Ok(axum::Json(json!({
                        "device_code": "device-1", "user_code": "WDJB-MJHT",
                        "verification_uri": device_url, "expires_in": 60, "interval": 0,
                    })))
                }
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |body: String| {
                let state = token_state.clone();
                async move {
                    let mut s = state.lock().unwrap();
                    s.token_polls += 1;
                    let grant = body.contains("device_code=device-1")
                        && body.contains(
                            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
                        );
                    match (&s.device_login, s.token_polls, grant) {
                        (_, _, false) => (
                            StatusCode::BAD_REQUEST,
                            axum::Json(json!({"error": "invalid_grant"})),
                        ),
                        // The person has not approved yet on the first poll.
                        (None, _, true) | (Some(_), 1, true) => (
                            StatusCode::BAD_REQUEST,
                            axum::Json(json!({"error": "authorization_pending"})),
                        ),
                        (Some(claims), _, true) => {
                            let token = sign(&s.keys[0], claims);
                            (
                                StatusCode::OK,
                                axum::Json(json!({"id_token": token, "token_type": "Bearer"})),
                            )
                        }
                    }
                }
            }),
        )
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let d = discovery.clone();
                async move { axum::Json(d) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let state = state.clone();
                async move {
                    let mut s = state.lock().unwrap();
                    s.jwks_fetches += 1;
                    if s.down {
                        return Err(StatusCode::SERVICE_UNAVAILABLE);
                    }
                    let keys: Vec<Value> = s.keys.iter().map(|k| k.jwk()).collect();
                    Ok(axum::Json(json!({ "keys": keys })))
                }
            }),
        )
}
