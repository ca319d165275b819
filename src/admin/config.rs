//! `[admin]`: where the admin plane listens.
//!
//! ```toml
//! [admin]
//! listen = "127.0.0.1:9187"   # /metrics, /healthz; absent: no admin listener
//! ```
//!
//! It must never default to an address other hosts can reach.

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use crate::config::Problems;

/// `[admin]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    listen: Option<Spanned<String>>,
}

/// Validates `[admin]`: its listen address, if any.
pub(crate) fn parse(raw: Option<RawAdmin>, p: &mut Problems) -> Option<SocketAddr> {
    let listen = raw?.listen?;
    match listen.get_ref().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            p.at(
                listen.span(),
                "admin.listen",
                "is not an address (host:port, e.g. \"127.0.0.1:9187\")",
            );
            None
        }
    }
}
