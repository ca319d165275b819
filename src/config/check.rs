//! What every configuration section's check shares: the problems found
//! (each `file:line: key: message`), the error they make, and the checks
//! several sections repeat (a file that must exist, a TLS pair, a secret
//! by reference, a list of target names). `config.rs` and each section's
//! own parser (`admin`, `store`, `oidc`, `logs`, `notify`, the policy)
//! build on it, so that none of them imports `config.rs`.
//!
//! It must never read a secret into a problem's message.

use std::ops::Range;
use std::path::{Path, PathBuf};

use sqlgate_postgres::Secret;
use toml::Spanned;

/// Everything wrong with a configuration file.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    /// One line per problem: `file:line: key: message`.
    pub problems: Vec<String>,
}

/// Whether a list of target names (`"*"`: every target) includes one.
/// Users, rules and masks all name targets this way.
pub fn target_listed(targets: &[String], target: &str) -> bool {
    targets.iter().any(|t| t == "*" || t == target)
}

/// Collects problems with their positions.
pub(crate) struct Problems<'a> {
    file: &'a Path,
    text: &'a str,
    list: Vec<String>,
    /// Secrets that cannot be resolved are not problems (tools that never
    /// connect: `sqlgate explain`).
    offline: bool,
}

impl<'a> Problems<'a> {
    /// Problems of one file with this text.
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Problems {
            file,
            text,
            list: Vec::new(),
            offline: false,
        }
    }

    /// The file.
    pub(crate) fn file(&self) -> &Path {
        self.file
    }

    /// Problems found elsewhere (a policy file's), as they are.
    pub(crate) fn extend(&mut self, problems: Vec<String>) {
        self.list.extend(problems);
    }

    /// The problems found.
    pub(crate) fn into_list(self) -> Vec<String> {
        self.list
    }

    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .bytes()
            .filter(|&b| b == b'\n')
            .count()
            + 1
    }

    /// Secrets are left unresolved when `offline` (tools that never
    /// connect).
    pub(crate) fn offline_if(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// Whether secrets are left unresolved (tools that never connect).
    pub(crate) fn offline(&self) -> bool {
        self.offline
    }

    pub(crate) fn at(&mut self, span: Range<usize>, key: &str, message: impl std::fmt::Display) {
        let line = self.line(&span);
        self.list
            .push(format!("{}:{line}: {key}: {message}", self.file.display()));
    }
}

/// A listener's `tls_cert` and `tls_key` (PEM files; both or neither).
pub(crate) fn tls_pair(
    base: &Path,
    cert: Option<&Spanned<String>>,
    key: Option<&Spanned<String>>,
    section: &str,
    p: &mut Problems,
) -> Option<(PathBuf, PathBuf)> {
    match (cert, key) {
        (Some(c), Some(k)) => {
            let cert = existing_file(base, c, &format!("{section}.tls_cert"), p);
            let key = existing_file(base, k, &format!("{section}.tls_key"), p);
            Some((cert, key))
        }
        (Some(c), None) => {
            p.at(
                c.span(),
                &format!("{section}.tls_cert"),
                "tls_key is needed as well",
            );
            None
        }
        (None, Some(k)) => {
            p.at(
                k.span(),
                &format!("{section}.tls_key"),
                "tls_cert is needed as well",
            );
            None
        }
        (None, None) => None,
    }
}

pub(crate) fn existing_file(
    base: &Path,
    value: &Spanned<String>,
    key: &str,
    p: &mut Problems,
) -> PathBuf {
    let path = base.join(value.get_ref());
    if !path.is_file() {
        p.at(
            value.span(),
            key,
            format!("no such file: {}", path.display()),
        );
    }
    path
}

/// A secret from an environment variable or a file (first line, without
/// the line break).
pub(crate) fn secret(
    base: &Path,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
    key: &str,
    p: &mut Problems,
) -> Option<Secret> {
    match (env, file) {
        (Some(e), Some(_)) => {
            let what = key.rsplit(' ').next().unwrap_or("password");
            p.at(
                e.span(),
                key,
                format!("give {what}_env or {what}_file, not both"),
            );
            None
        }
        (Some(e), None) => match std::env::var(e.get_ref()) {
            Ok(v) => Some(Secret::new(v)),
            Err(_) if p.offline => Some(Secret::new(String::new())),
            Err(_) => {
                p.at(
                    e.span(),
                    &format!("{key}_env"),
                    format!("environment variable {} is not set", e.get_ref()),
                );
                None
            }
        },
        (None, Some(f)) => {
            let path = base.join(f.get_ref());
            match std::fs::read_to_string(&path) {
                Ok(v) => Some(Secret::new(v.lines().next().unwrap_or("").to_owned())),
                Err(_) if p.offline => Some(Secret::new(String::new())),
                Err(err) => {
                    p.at(
                        f.span(),
                        &format!("{key}_file"),
                        format!("cannot read {}: {err}", path.display()),
                    );
                    None
                }
            }
        }
        (None, None) => None,
    }
}
