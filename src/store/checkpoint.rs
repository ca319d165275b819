//! Signed checkpoints: a chain alone can be recomputed by whoever can
//! write the store; a signature over the chain's head cannot, without
//! the key (ed25519, kept in a file only the gateway reads). The writer
//! signs the gateway-wide chain's last link at most every
//! `checkpoint_secs` and when it stops; `sqlgate audit verify
//! --public-key F` checks every signature and that each checkpoint's link
//! is still the chain's. Links after the last checkpoint are only as safe
//! as the chain.
//!
//! This module must never write the signing key anywhere but where it
//! was read from, nor print it.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// A signature over the chain at one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its place, from 0.
    pub n: u64,
    /// The link it covers (the chain's last when it was made).
    pub link: u64,
    /// That link's hash.
    pub link_hash: [u8; 32],
    /// When, microseconds since the epoch.
    pub at_us: i64,
    /// The signature over [`signed_bytes`].
    pub signature: Vec<u8>,
}

/// Where the chain starts after retention pruned its oldest sessions:
/// the last pruned link, signed, so that a prefix cut by anyone but the
/// gateway does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The last pruned link.
    pub link: u64,
    /// Its hash (the next link's predecessor).
    pub hash: [u8; 32],
    /// Sessions ended before this (microseconds since the epoch) were
    /// pruned.
    pub cutoff_us: i64,
    /// The signature over [`anchor_bytes`] (empty without a key).
    pub signature: Vec<u8>,
}

/// What an anchor signs.
pub fn anchor_bytes(link: u64, hash: &[u8; 32], cutoff_us: i64) -> Vec<u8> {
    let mut b = b"sqlgate-anchor-v1".to_vec();
    b.extend_from_slice(&link.to_be_bytes());
    b.extend_from_slice(hash);
    b.extend_from_slice(&cutoff_us.to_be_bytes());
    b
}

/// What a checkpoint signs.
pub fn signed_bytes(n: u64, link: u64, link_hash: &[u8; 32], at_us: i64) -> Vec<u8> {
    let mut b = b"sqlgate-checkpoint-v1".to_vec();
    b.extend_from_slice(&n.to_be_bytes());
    b.extend_from_slice(&link.to_be_bytes());
    b.extend_from_slice(link_hash);
    b.extend_from_slice(&at_us.to_be_bytes());
    b
}

/// The signing key, from a file of 64 hex digits (its seed).
pub struct Key(SigningKey);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Unreadable.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    /// Not 64 hex digits.
    #[error("{0}: not a key (64 hex digits expected)")]
    Format(String),
}

fn read32(path: &Path) -> Result<[u8; 32], KeyError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| KeyError::Read(path.display().to_string(), e))?;
    let bytes =
        hex::decode(text.trim()).map_err(|_| KeyError::Format(path.display().to_string()))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Format(path.display().to_string()))
}

impl Key {
    /// Reads a signing key.
    pub fn read(path: &Path) -> Result<Key, KeyError> {
        Ok(Key(SigningKey::from_bytes(&read32(path)?)))
    }

    /// A new random key.
    pub fn generate() -> Key {
        Key(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    /// The key's seed as written to its file.
    pub fn to_file_text(&self) -> String {
        hex::encode(self.0.to_bytes())
    }

    /// The public key as written to its file.
    pub fn public_text(&self) -> String {
        hex::encode(self.0.verifying_key().to_bytes())
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs an anchor.
    pub fn sign_anchor(&self, link: u64, hash: [u8; 32], cutoff_us: i64) -> Anchor {
        Anchor {
            link,
            hash,
            cutoff_us,
            signature: self
                .0
                .sign(&anchor_bytes(link, &hash, cutoff_us))
                .to_bytes()
                .to_vec(),
        }
    }

    /// Signs a checkpoint.
    pub fn sign(&self, n: u64, link: u64, link_hash: [u8; 32], at_us: i64) -> Checkpoint {
        let signature = self.0.sign(&signed_bytes(n, link, &link_hash, at_us));
        Checkpoint {
            n,
            link,
            link_hash,
            at_us,
            signature: signature.to_bytes().to_vec(),
        }
    }
}

/// A public key to verify with.
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a public key file (64 hex digits).
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(&read32(path)?)
            .map(PublicKey)
            .map_err(|_| KeyError::Format(path.display().to_string()))
    }

    /// Whether the anchor's signature is this key's.
    pub fn verifies_anchor(&self, a: &Anchor) -> bool {
        Signature::from_slice(&a.signature).is_ok_and(|sig| {
            self.0
                .verify(&anchor_bytes(a.link, &a.hash, a.cutoff_us), &sig)
                .is_ok()
        })
    }

    /// Whether the checkpoint's signature is this key's.
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let Ok(sig) = Signature::from_slice(&cp.signature) else {
            return false;
        };
        self.0
            .verify(&signed_bytes(cp.n, cp.link, &cp.link_hash, cp.at_us), &sig)
            .is_ok()
    }
}
