//! Server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks
//! it: the gateway verifies its own users' passwords without ever holding
//! them in clear once the configuration is loaded.
//!
//! Channel binding (SCRAM-SHA-256-PLUS) is not offered; a client that
//! claims the server supports it (`y,,` is fine, `p=` is not) is refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The default PBKDF2 iteration count, as in PostgreSQL.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Why a SCRAM exchange or verifier failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    /// A message of the exchange does not follow RFC 5802.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding was requested, which the gateway does not offer.
    #[error("SCRAM channel binding is not supported by the gateway")]
    ChannelBinding,
    /// The client's proof does not match: wrong password.
    #[error("SCRAM proof does not match")]
    BadProof,
    /// A stored verifier that does not parse.
    #[error("invalid SCRAM verifier: expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")]
    BadVerifier,
}

/// What the gateway keeps of a user's password: salt, iteration count and
/// the two derived keys. Enough to verify, never enough to log in elsewhere
/// as the user on a server that keeps the same verifier... which is why it
/// prints redacted all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramSecret(<redacted>)")
    }
}

impl ScramSecret {
    /// Derives a secret from a password with a fresh random salt.
    pub fn from_password(password: &[u8]) -> Self {
        let mut salt = vec![0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        Self::derive(password, salt, DEFAULT_ITERATIONS)
    }

    /// Derives a secret from a password, salt and iteration count.
    pub fn derive(password: &[u8], salt: Vec<u8>, iterations: u32) -> Self {
        let salted = salted_password(password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        ScramSecret {
            iterations,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(&salted, b"Server Key"),
            salt,
        }
    }

    /// A secret for a user that does not exist: the exchange runs as for a
    /// real user (same salt every time for the same name) and always fails,
    /// so that a client cannot tell which user names exist.
    pub fn mock(user: &str, key: &[u8; 32]) -> Self {
        let salt = hmac(key, user.as_bytes())[..16].to_vec();
        let mut stored_key = [0u8; 32];
        rand::rng().fill_bytes(&mut stored_key);
        ScramSecret {
            iterations: DEFAULT_ITERATIONS,
            salt,
            stored_key,
            server_key: stored_key,
        }
    }

    /// Parses PostgreSQL's verifier format
    /// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(verifier: &str) -> Result<Self, ScramError> {
        let bad = || ScramError::BadVerifier;
        let rest = verifier.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (params, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iter, salt) = params.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let key = |s: &str| -> Result<[u8; 32], ScramError> {
            B64.decode(s)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(bad)
        };
        Ok(ScramSecret {
            iterations: iter.parse().ok().filter(|&i| i > 0).ok_or_else(bad)?,
            salt: B64.decode(salt).map_err(|_| bad())?,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }

    /// The verifier in PostgreSQL's format (what `sqlgate passwd` prints).
    pub fn verifier(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(self.stored_key),
            B64.encode(self.server_key)
        )
    }

    /// Checks a cleartext password (the `password` method) in constant time.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        let other = Self::derive(password, self.salt.clone(), self.iterations);
        bool::from(other.stored_key.ct_eq(&self.stored_key))
    }

    /// Answers the client-first-message: returns the server-first-message
    /// and the state needed to check the client's final message.
    pub fn server_first(&self, client_first: &[u8]) -> Result<(ScramServer, Vec<u8>), ScramError> {
        let msg = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("utf-8"))?;
        let (gs2_flag, rest) = msg
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header"))?;
        match gs2_flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("gs2 flag")),
        }
        let (_authzid, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("gs2 header"))?;
        let gs2_header = &msg[..msg.len() - bare.len()];
        let client_nonce = bare
            .split(',')
            .find_map(|attr| attr.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or(ScramError::Malformed("client nonce"))?;
        let mut server_nonce = [0u8; 18];
        rand::rng().fill_bytes(&mut server_nonce);
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&self.salt),
            self.iterations
        );
        let state = ScramServer {
            secret: self.clone(),
            gs2_header: gs2_header.to_owned(),
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((state, server_first.into_bytes()))
    }
}

/// The state between the server-first and the client-final message.
#[derive(Debug)]
pub struct ScramServer {
    secret: ScramSecret,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ScramServer {
    /// Checks the client-final-message; on success returns the
    /// server-final-message (`v=<ServerSignature>`).
    pub fn finish(self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let msg = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("utf-8"))?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("proof"))?;
        let mut channel = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                channel = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        let channel = B64
            .decode(channel.ok_or(ScramError::Malformed("channel binding"))?)
            .map_err(|_| ScramError::Malformed("channel binding"))?;
        if channel != self.gs2_header.as_bytes() {
            return Err(ScramError::Malformed("channel binding does not match"));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let proof: [u8; 32] = B64
            .decode(proof)
            .ok()
            .and_then(|p| p.try_into().ok())
            .ok_or(ScramError::Malformed("proof"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac(&self.secret.stored_key, auth_message.as_bytes());
        let mut client_key = proof;
        for (k, s) in client_key.iter_mut().zip(signature) {
            *k ^= s;
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(stored.ct_eq(&self.secret.stored_key)) {
            return Err(ScramError::BadProof);
        }
        let server_signature = hmac(&self.secret.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// PBKDF2 over the SASLprep'ed password, as PostgreSQL and libpq do: a
/// password that is not UTF-8 or fails SASLprep is used as raw bytes.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let prepared: Vec<u8> = match std::str::from_utf8(password) {
        Ok(s) => match stringprep::saslprep(s) {
            Ok(p) => p.into_owned().into_bytes(),
            Err(_) => password.to_vec(),
        },
        Err(_) => password.to_vec(),
    };
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(&prepared, salt, iterations, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    /// Runs a whole exchange against postgres-protocol's client.
    fn exchange(secret: &ScramSecret, password: &[u8]) -> Result<(), ScramError> {
        let mut client = ScramSha256::new(password, ChannelBinding::unsupported());
        let (state, server_first) = secret.server_first(client.message())?;
        client.update(&server_first).unwrap();
        let server_final = state.finish(client.message())?;
        client
            .finish(&server_final)
            .expect("client accepts the server signature");
        Ok(())
    }

    #[test]
    fn right_password_passes_wrong_fails() {
        let secret = ScramSecret::from_password(b"s3cret");
        exchange(&secret, b"s3cret").unwrap();
        assert_eq!(exchange(&secret, b"wrong"), Err(ScramError::BadProof));
    }

    #[test]
    fn verifier_round_trip_and_postgres_format() {
        let secret = ScramSecret::from_password(b"pw");
        let parsed = ScramSecret::parse(&secret.verifier()).unwrap();
        assert_eq!(parsed, secret);
        // a verifier made by postgres-protocol, as PostgreSQL stores them
        let pg = postgres_protocol::password::scram_sha_256(b"pw");
        let secret = ScramSecret::parse(&pg).unwrap();
        exchange(&secret, b"pw").unwrap();
        assert!(secret.verify_password(b"pw"));
        assert!(!secret.verify_password(b"pW"));
        assert!(ScramSecret::parse("md5abc").is_err());
    }

    #[test]
    fn mock_secret_always_fails() {
        let secret = ScramSecret::mock("ghost", &[1; 32]);
        assert_eq!(exchange(&secret, b""), Err(ScramError::BadProof));
    }

    #[test]
    fn malformed_messages_are_errors() {
        let secret = ScramSecret::from_password(b"pw");
        for bad in [&b""[..], b"n", b"x,,n=,r=abc", b"n,,n=,r=", b"\xff"] {
            assert!(secret.server_first(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            secret
                .server_first(b"p=tls-server-end-point,,n=,r=abc")
                .unwrap_err(),
            ScramError::ChannelBinding
        );
        let (state, _) = secret.server_first(b"n,,n=,r=abc").unwrap();
        assert!(state.finish(b"c=biws,r=abc,p=AAAA").is_err());
    }
}
