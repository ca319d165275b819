//! `[log]`: how the gateway's log lines are written — text for people,
//! or one JSON object a line for a log pipeline.
//!
//! ```toml
//! [log]
//! format = "json"   # or "text" (the default)
//! ```
//!
//! It must never change what is logged, only how: secrets stay out of
//! both forms alike.

use serde::Deserialize;
use toml::Spanned;

use crate::config::check::Problems;

/// `[log]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    format: Option<Spanned<String>>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// Validates `[log]`.
pub(crate) fn parse(raw: Option<RawLog>, p: &mut Problems) -> Format {
    let Some(format) = raw.and_then(|r| r.format) else {
        return Format::Text;
    };
    match format.get_ref().as_str() {
        "text" => Format::Text,
        "json" => Format::Json,
        _ => {
            p.at(format.span(), "log.format", "must be \"text\" or \"json\"");
            Format::Text
        }
    }
}
