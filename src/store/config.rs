//! `[store]` and `[recording]`: where records go and how they are kept.
//!
//! ```toml
//! [store]
//! path = "recordings.db"     # SQLite file, relative to the config;
//!                            # default: sqlgate-recordings.db beside it
//! # or PostgreSQL, for several gateways sharing one trail:
//! # url = "postgres://sqlgate@db.internal:5432/audit"
//! # password_file = "store.pw"   # never in the URL
//! # tls = "verify-full"           # or "require", "disable" (default)
//! # tls_ca_file = "store-ca.pem"  # for verify-full
//! [recording]
//! enabled = true             # default
//! flush_ms = 200             # reads and outcomes committed within this
//! on_failure = "refuse"      # or "continue": what happens to statements
//!                            # that must be durable when the store fails
//! signing_key_file = "audit.key"   # ed25519 (sqlgate keygen); optional
//! checkpoint_secs = 60       # how often the chain's head is signed
//! retain_days = 90           # prune sessions ended longer ago (hourly)
//! result_rows = 100          # first rows of each result kept, as the
//! result_bytes = 65536       #   client saw them (masked); 0 turns it off
//! parameters = "all"         # bound parameter values, or "omit"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::check::Problems;

/// What to do with statements that must be durable when the store cannot
/// take them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Refuse them with a clear error (the default).
    Refuse,
    /// Let them run; their records are kept and retried.
    Continue,
}

/// `[store]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    tls_ca_file: Option<Spanned<String>>,
}

/// `[recording]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRecording {
    enabled: Option<bool>,
    flush_ms: Option<Spanned<u64>>,
    on_failure: Option<Spanned<String>>,
    signing_key_file: Option<Spanned<String>>,
    checkpoint_secs: Option<Spanned<u64>>,
    retain_days: Option<Spanned<u64>>,
    result_rows: Option<Spanned<u64>>,
    result_bytes: Option<Spanned<u64>>,
    parameters: Option<Spanned<String>>,
}

/// Recording, validated.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// Whether sessions are recorded.
    pub enabled: bool,
    /// The SQLite file.
    pub path: PathBuf,
    /// The PostgreSQL store instead, when `[store] url` names one.
    pub postgres: Option<PostgresLocation>,
    /// Group-commit interval of records nothing waits for.
    pub flush: Duration,
    /// What happens to statements that must be durable when the store
    /// fails.
    pub on_failure: OnFailure,
    /// The checkpoint signing key's file (ed25519 seed, 64 hex digits).
    pub signing_key: Option<PathBuf>,
    /// How often the chain's head is signed.
    pub checkpoint_every: Duration,
    /// Sessions ended longer ago are pruned (`None`: kept).
    pub retain: Option<Duration>,
    /// What of results and parameters records keep.
    pub capture: Capture,
}

/// A PostgreSQL store: its URL (no password) and the password's file.
#[derive(Clone)]
pub struct PostgresLocation {
    /// The connection URL as written.
    pub url: String,
    /// The file holding the password, if any.
    pub password_file: Option<PathBuf>,
    /// How the store's server certificate is checked.
    pub tls: sqlgate_postgres::tls::ServerTls,
}

impl std::fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl PostgresLocation {
    /// The connection settings, with the password read from its file.
    pub fn connect_config(&self) -> Result<postgres::Config, String> {
        let mut config: postgres::Config = self.url.parse().map_err(|e| format!("{e}"))?;
        if let Some(file) = &self.password_file {
            let pw = std::fs::read_to_string(file)
                .map_err(|e| format!("store.password_file {}: {e}", file.display()))?;
            config.password(pw.trim_end_matches(['\n', '\r']));
        }
        config.application_name("sqlgate-recorder");
        Ok(config)
    }
}

/// What of results and parameters records keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// First rows of each result (0: none).
    pub rows: usize,
    /// Bytes of values of each result, at most.
    pub bytes: usize,
    /// Bound parameter values are recorded.
    pub parameters: bool,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            rows: 100,
            bytes: 64 << 10,
            parameters: true,
        }
    }
}

/// Largest `result_bytes` (a sample is held in memory per session).
const MAX_RESULT_BYTES: u64 = 16 << 20;

/// File name of the default store, beside the configuration.
pub const DEFAULT_FILE: &str = "sqlgate-recordings.db";

/// `[store] tls` and `tls_ca_file`, as for targets.
fn store_tls(store: &RawStore, base: &Path, p: &mut Problems) -> sqlgate_postgres::tls::ServerTls {
    use sqlgate_postgres::tls::ServerTls;
    match store.tls.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
        None | Some(("disable", _)) => ServerTls::Disable,
        Some(("require", _)) => ServerTls::Require,
        Some(("verify-full", span)) => match &store.tls_ca_file {
            Some(ca) => ServerTls::VerifyFull {
                ca_file: crate::config::check::existing_file(base, ca, "store.tls_ca_file", p),
            },
            None => {
                p.at(span, "store.tls", "verify-full needs tls_ca_file");
                ServerTls::Disable
            }
        },
        Some((other, span)) => {
            p.at(
                span,
                "store.tls",
                format!("unknown mode \"{other}\" (expected disable, require or verify-full)"),
            );
            ServerTls::Disable
        }
    }
}

/// Validates both sections (absent: the defaults).
pub(crate) fn parse(
    store: Option<RawStore>,
    recording: Option<RawRecording>,
    base: &Path,
    p: &mut Problems,
) -> RecordingConfig {
    let store = store.unwrap_or_default();
    let recording = recording.unwrap_or_default();
    let path = match &store.path {
        Some(s) if s.get_ref().trim().is_empty() => {
            p.at(s.span(), "store.path", "is empty");
            base.join(DEFAULT_FILE)
        }
        Some(s) => base.join(s.get_ref()),
        None => base.join(DEFAULT_FILE),
    };
    let postgres = match &store.url {
        Some(u) => {
            match u.get_ref().parse::<postgres::Config>() {
                Err(e) => p.at(
                    u.span(),
                    "store.url",
                    format!("is not a PostgreSQL URL: {e}"),
                ),
                Ok(c) if c.get_password().is_some() => p.at(
                    u.span(),
                    "store.url",
                    "must not hold a password: name a password_file",
                ),
                Ok(_) => {}
            }
            if store.path.is_some() {
                p.at(
                    u.span(),
                    "store.url",
                    "names a second store beside store.path",
                );
            }
            Some(PostgresLocation {
                url: u.get_ref().clone(),
                password_file: store.password_file.as_ref().map(|f| base.join(f.get_ref())),
                tls: store_tls(&store, base, p),
            })
        }
        None => {
            if let Some(f) = &store.password_file {
                p.at(f.span(), "store.password_file", "is for a store.url");
            }
            None
        }
    };
    let flush = match &recording.flush_ms {
        Some(f) if *f.get_ref() == 0 || *f.get_ref() > 60_000 => {
            p.at(
                f.span(),
                "recording.flush_ms",
                "must be between 1 and 60000",
            );
            Duration::from_millis(200)
        }
        Some(f) => Duration::from_millis(*f.get_ref()),
        None => Duration::from_millis(200),
    };
    let on_failure = match recording
        .on_failure
        .as_ref()
        .map(|s| (s, s.get_ref().as_str()))
    {
        None | Some((_, "refuse")) => OnFailure::Refuse,
        Some((_, "continue")) => OnFailure::Continue,
        Some((s, _)) => {
            p.at(
                s.span(),
                "recording.on_failure",
                "must be \"refuse\" or \"continue\"",
            );
            OnFailure::Refuse
        }
    };
    let signing_key = recording.signing_key_file.as_ref().map(|f| {
        let path = base.join(f.get_ref());
        if let Err(e) = super::checkpoint::Key::read(&path) {
            if !p.offline() {
                p.at(f.span(), "recording.signing_key_file", e);
            }
        }
        path
    });
    let checkpoint_every = match &recording.checkpoint_secs {
        Some(c) if *c.get_ref() == 0 => {
            p.at(c.span(), "recording.checkpoint_secs", "must be at least 1");
            Duration::from_secs(60)
        }
        Some(c) => Duration::from_secs(*c.get_ref()),
        None => Duration::from_secs(60),
    };
    let retain = match &recording.retain_days {
        Some(d) if *d.get_ref() == 0 => {
            p.at(d.span(), "recording.retain_days", "must be at least 1");
            None
        }
        Some(d) => Some(Duration::from_secs(d.get_ref() * 86_400)),
        None => None,
    };
    let mut capture = Capture::default();
    if let Some(r) = &recording.result_rows {
        capture.rows = *r.get_ref() as usize;
        if *r.get_ref() > 100_000 {
            p.at(r.span(), "recording.result_rows", "must be at most 100000");
            capture.rows = 100;
        }
    }
    if let Some(b) = &recording.result_bytes {
        capture.bytes = *b.get_ref() as usize;
        if *b.get_ref() > MAX_RESULT_BYTES {
            p.at(
                b.span(),
                "recording.result_bytes",
                format!("must be at most {MAX_RESULT_BYTES}"),
            );
            capture.bytes = 64 << 10;
        }
    }
    match recording
        .parameters
        .as_ref()
        .map(|s| (s, s.get_ref().as_str()))
    {
        None | Some((_, "all")) => {}
        Some((_, "omit")) => capture.parameters = false,
        Some((s, _)) => p.at(
            s.span(),
            "recording.parameters",
            "must be \"all\" or \"omit\"",
        ),
    }
    RecordingConfig {
        postgres,
        capture,
        retain,
        enabled: recording.enabled.unwrap_or(true),
        path,
        flush,
        on_failure,
        signing_key,
        checkpoint_every,
    }
}
