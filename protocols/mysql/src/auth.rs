//! Verifying gateway users' passwords for the MySQL auth plugins, from
//! what the gateway keeps (the double hashes servers keep too), never the
//! password itself:
//!
//! - `mysql_native_password`: the client sends
//!   `SHA1(pw) XOR SHA1(nonce ‖ SHA1(SHA1(pw)))`.
//! - `caching_sha2_password` (fast path): the client sends
//!   `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) ‖ nonce)`. The gateway keeps
//!   `SHA256(SHA256(pw))`, so every login takes the fast path and no full
//!   authentication (cleartext or RSA) is ever needed.
//! - `mysql_clear_password` (only over TLS): the password itself.

use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A gateway user's password hashes for MySQL clients.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlSecret {
    native: [u8; 20],
    sha2: [u8; 32],
}

impl std::fmt::Debug for MysqlSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MysqlSecret(<redacted>)")
    }
}

impl MysqlSecret {
    /// Derives the hashes from a password.
    pub fn from_password(password: &[u8]) -> Self {
        let stage1: [u8; 20] = Sha1::digest(password).into();
        let sha1: [u8; 32] = Sha256::digest(password).into();
        MysqlSecret {
            native: Sha1::digest(stage1).into(),
            sha2: Sha256::digest(sha1).into(),
        }
    }

    /// A secret no password matches (for unknown users).
    pub fn impossible() -> Self {
        let mut s = MysqlSecret {
            native: [0; 20],
            sha2: [0; 32],
        };
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut s.native);
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut s.sha2);
        s
    }

    /// Checks a `mysql_native_password` token for this nonce.
    pub fn verify_native(&self, nonce: &[u8], token: &[u8]) -> bool {
        let Ok(token) = <[u8; 20]>::try_from(token) else {
            return false;
        };
        let mut h = Sha1::new();
        h.update(nonce);
        h.update(self.native);
        let mask: [u8; 20] = h.finalize().into();
        let mut stage1 = token;
        for (a, b) in stage1.iter_mut().zip(mask) {
            *a ^= b;
        }
        let check: [u8; 20] = Sha1::digest(stage1).into();
        bool::from(check.ct_eq(&self.native))
    }

    /// Checks a `caching_sha2_password` fast-path token for this nonce.
    pub fn verify_sha2(&self, nonce: &[u8], token: &[u8]) -> bool {
        let Ok(token) = <[u8; 32]>::try_from(token) else {
            return false;
        };
        let mut h = Sha256::new();
        h.update(self.sha2);
        h.update(nonce);
        let mask: [u8; 32] = h.finalize().into();
        let mut sha1 = token;
        for (a, b) in sha1.iter_mut().zip(mask) {
            *a ^= b;
        }
        let check: [u8; 32] = Sha256::digest(sha1).into();
        bool::from(check.ct_eq(&self.sha2))
    }

    /// Checks a cleartext password.
    pub fn verify_clear(&self, password: &[u8]) -> bool {
        let other = Self::from_password(password);
        bool::from(other.native.ct_eq(&self.native)) & bool::from(other.sha2.ct_eq(&self.sha2))
    }
}

/// A fresh 20-byte nonce of printable bytes, as servers send.
pub fn nonce() -> [u8; 20] {
    let mut n = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut n);
    for b in &mut n {
        *b = b'!' + (*b % 94);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::auth::plugins::caching_sha2_password::scramble_sha256;
    use mysql_common::auth::plugins::mysql_native_password::scramble_native;

    #[test]
    fn tokens_from_mysql_common_verify() {
        let s = MysqlSecret::from_password(b"pw");
        let n = nonce();
        assert!(s.verify_native(&n, &scramble_native(&n, b"pw").unwrap()));
        assert!(!s.verify_native(&n, &scramble_native(&n, b"pW").unwrap()));
        assert!(s.verify_sha2(&n, &scramble_sha256(&n, b"pw").unwrap()));
        assert!(!s.verify_sha2(&n, &scramble_sha256(&n, b"px").unwrap()));
        assert!(s.verify_clear(b"pw") && !s.verify_clear(b""));
        assert!(!s.verify_native(&n, b"short"));
        assert!(!MysqlSecret::impossible().verify_native(&n, &scramble_native(&n, b"x").unwrap()));
    }
}
