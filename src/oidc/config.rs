//! `[[oidc]]`: the identity providers whose tokens are logins, and how a
//! token's claims become a gateway identity. Checked like the rest of the
//! file (`file:line: key: message`); nothing here fetches anything.
//!
//! ```toml
//! [[oidc]]
//! name = "github"                       # the user name clients log in with
//! issuer = "https://token.actions.githubusercontent.com"
//! audiences = ["sqlgate"]               # required
//! algorithms = ["RS256"]                # default; none and HS* never
//! targets = ["app"]                     # what its identities may reach
//! # default_target = "app"              # MySQL logins naming no database
//! # jwks_uri = "https://..."            # default: the discovery document's
//! # ca_file = "issuer-ca.pem"           # the roots of the issuer's TLS
//! #                                     # (default: the public web roots)
//! # leeway_secs = 30                    # clock skew allowed on exp/nbf/iat
//! # on_expiry = "end"                   # or "keep": sessions outlive tokens
//! # refresh_secs = 3600                 # keys refetched this often
//! # min_refresh_secs = 60               # an unknown kid refetches at most
//! #                                     # this often
//! # keys_max_age_secs = 86400           # keys kept through an outage
//! # require = { repository_owner = "acme" }   # every token must have these
//! # user_claim = "email"                # identity from the token itself
//! #                                     # (email: email_verified must be true)
//! # groups_claim = "groups"
//! # groups_allowed = ["dba", "agents"]  # the only groups the claim may give
//!
//! [[oidc.identity]]                     # first match wins
//! when = { repository_id = "123456", ref = "refs/heads/main" }
//! user = "ci-migrate"
//! groups = ["ci"]
//! # targets = ["app"]                   # default: the block's
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::check::{target_listed, Problems};

/// Signature algorithms a provider may allow. HMAC (`HS*`) is never one: a
/// shared secret would have to be in the gateway and the issuer alike,
/// and `none` signs nothing.
pub const ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// `[[oidc]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    name: Spanned<String>,
    issuer: Spanned<String>,
    audiences: Option<Spanned<Vec<String>>>,
    algorithms: Option<Spanned<Vec<String>>>,
    targets: Option<Spanned<Vec<String>>>,
    default_target: Option<Spanned<String>>,
    jwks_uri: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    leeway_secs: Option<Spanned<u64>>,
    on_expiry: Option<Spanned<String>>,
    refresh_secs: Option<Spanned<u64>>,
    min_refresh_secs: Option<u64>,
    keys_max_age_secs: Option<Spanned<u64>>,
    user_claim: Option<Spanned<String>>,
    groups_claim: Option<String>,
    groups_allowed: Option<Vec<String>>,
    require: Option<Spanned<BTreeMap<String, toml::Value>>>,
    #[serde(default)]
    identity: Vec<RawIdentity>,
}

/// `[[oidc.identity]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    when: Spanned<BTreeMap<String, toml::Value>>,
    user: Spanned<String>,
    #[serde(default)]
    groups: Vec<String>,
    targets: Option<Spanned<Vec<String>>>,
}

/// One identity provider, validated.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The user name its logins use.
    pub name: String,
    /// `iss`, exactly.
    pub issuer: String,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// Accepted `alg` values.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Targets its identities may reach unless a rule says otherwise.
    pub targets: Vec<String>,
    /// Where MySQL logins that name no database go.
    pub default_target: Option<String>,
    /// The key set's address; `None`: from the discovery document.
    pub jwks_uri: Option<String>,
    /// Roots for the issuer's TLS (`None`: the public web roots).
    pub ca_file: Option<PathBuf>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Whether sessions end when their token expires.
    pub end_at_expiry: bool,
    /// How often keys are refetched.
    pub refresh: Duration,
    /// How often at most an unknown `kid` refetches them.
    pub min_refresh: Duration,
    /// How long keys outlive their last successful fetch (an outage).
    pub keys_max_age: Duration,
    /// The claim naming the user when no rule matches.
    pub user_claim: Option<String>,
    /// The claim listing the user's groups (with `user_claim`).
    pub groups_claim: Option<String>,
    /// The only groups `groups_claim` may give (`None`: any).
    pub groups_allowed: Option<Vec<String>>,
    /// Claims every token of this provider must have (on both the rule
    /// and the user-claim path): `repository_owner`, `tid`, `hd`, ...
    pub require: Vec<(String, Vec<String>)>,
    /// Claim rules, first match wins.
    pub identities: Vec<IdentityRule>,
}

/// Claims to an identity.
#[derive(Debug, Clone)]
pub struct IdentityRule {
    /// Every claim must have one of its values.
    pub when: Vec<(String, Vec<String>)>,
    /// The gateway user.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its targets.
    pub targets: Vec<String>,
}

/// Validates the `[[oidc]]` blocks against the file's users and targets.
pub(crate) fn parse(
    raw: Vec<RawOidc>,
    users: &[&str],
    targets: &[&str],
    base: &Path,
    p: &mut Problems,
) -> Vec<Provider> {
    let mut names = HashSet::new();
    raw.into_iter()
        .filter_map(|o| provider(o, users, targets, &mut names, base, p))
        .collect()
}

fn provider(
    o: RawOidc,
    users: &[&str],
    targets: &[&str],
    names: &mut HashSet<String>,
    base: &Path,
    p: &mut Problems,
) -> Option<Provider> {
    let name = o.name.get_ref().clone();
    let key = |k: &str| format!("oidc \"{name}\" {k}");
    if name.is_empty() {
        p.at(o.name.span(), "oidc.name", "must not be empty");
    } else if users.contains(&name.as_str()) {
        p.at(
            o.name.span(),
            &key("name"),
            "is also a [[user]]: clients log in to a provider with its name as user name",
        );
    } else if !names.insert(name.clone()) {
        p.at(o.name.span(), &key("name"), "is defined twice");
    }
    let issuer = o.issuer.get_ref().clone();
    if !issuer.starts_with("https://") {
        p.at(
            o.issuer.span(),
            &key("issuer"),
            "must be an https:// URL (its keys are fetched from it)",
        );
    }
    let audiences = match &o.audiences {
        Some(a) if !a.get_ref().is_empty() => a.get_ref().clone(),
        Some(a) => {
            p.at(
                a.span(),
                &key("audiences"),
                "names no audience: tokens for any audience are never accepted",
            );
            Vec::new()
        }
        None => {
            p.at(
                o.name.span(),
                &key("audiences"),
                "is required: tokens for any audience are never accepted",
            );
            Vec::new()
        }
    };
    let algorithms = match &o.algorithms {
        None => vec![jsonwebtoken::Algorithm::RS256],
        Some(list) => {
            if list.get_ref().is_empty() {
                p.at(list.span(), &key("algorithms"), "names no algorithm");
            }
            list.get_ref()
                .iter()
                .filter_map(|a| {
                    if !ALGORITHMS.contains(&a.as_str()) {
                        let why = if a.starts_with("HS") || a.eq_ignore_ascii_case("none") {
                            "is never accepted (shared secrets and unsigned tokens are not logins)"
                        } else {
                            "is not known"
                        };
                        p.at(
                            list.span(),
                            &key("algorithms"),
                            format!("\"{a}\" {why}; choose from {}", ALGORITHMS.join(", ")),
                        );
                        return None;
                    }
                    a.parse().ok()
                })
                .collect()
        }
    };
    let block = Block {
        name: &name,
        targets,
    };
    let known_targets =
        |list: &Spanned<Vec<String>>, k: &str, p: &mut Problems| block.check_targets(list, k, p);
    let block_targets = match &o.targets {
        Some(t) => {
            known_targets(t, "targets", p);
            t.get_ref().clone()
        }
        None => {
            p.at(
                o.name.span(),
                &key("targets"),
                "is required: the targets this provider's identities may reach",
            );
            Vec::new()
        }
    };
    if let Some(d) = &o.default_target {
        if !target_listed(&block_targets, d.get_ref()) || !targets.contains(&d.get_ref().as_str()) {
            p.at(
                d.span(),
                &key("default_target"),
                "must name a target of the provider's `targets`",
            );
        }
    }
    if let Some(j) = &o.jwks_uri {
        if !j.get_ref().starts_with("https://") {
            p.at(j.span(), &key("jwks_uri"), "must be an https:// URL");
        }
    }
    let ca_file = o
        .ca_file
        .as_ref()
        .map(|c| crate::config::check::existing_file(base, c, &key("ca_file"), p));
    let leeway = o.leeway_secs.as_ref().map_or(30, |l| {
        if *l.get_ref() > 300 {
            p.at(l.span(), &key("leeway_secs"), "must be at most 300");
        }
        *l.get_ref()
    });
    let end_at_expiry = match o
        .on_expiry
        .as_ref()
        .map(|e| (e.get_ref().as_str(), e.span()))
    {
        None | Some(("end", _)) => true,
        Some(("keep", _)) => false,
        Some((_, span)) => {
            p.at(span, &key("on_expiry"), "must be \"end\" or \"keep\"");
            true
        }
    };
    let refresh = o.refresh_secs.as_ref().map_or(3600, |r| {
        if *r.get_ref() == 0 {
            p.at(r.span(), &key("refresh_secs"), "must be at least 1");
        }
        *r.get_ref()
    });
    let keys_max_age = o.keys_max_age_secs.as_ref().map_or(86_400, |m| {
        if *m.get_ref() < refresh {
            p.at(
                m.span(),
                &key("keys_max_age_secs"),
                "must be at least refresh_secs",
            );
        }
        *m.get_ref()
    });
    let require = o
        .require
        .as_ref()
        .map(|r| claim_values(r, &block.key("require"), p))
        .unwrap_or_default();
    let identities: Vec<IdentityRule> = o
        .identity
        .into_iter()
        .map(|r| identity_rule(r, &block_targets, &block, users, p))
        .collect();
    if identities.is_empty() && o.user_claim.is_none() {
        p.at(
            o.name.span(),
            &key("identity"),
            "needs [[oidc.identity]] rules or user_claim: otherwise no token could log in",
        );
    }
    if let Some(c) = o.user_claim.as_ref().filter(|c| c.get_ref().is_empty()) {
        p.at(c.span(), &key("user_claim"), "must not be empty");
    }
    Some(Provider {
        name,
        issuer,
        audiences,
        algorithms,
        targets: block_targets,
        default_target: o.default_target.map(Spanned::into_inner),
        jwks_uri: o.jwks_uri.map(Spanned::into_inner),
        ca_file,
        leeway: Duration::from_secs(leeway),
        end_at_expiry,
        refresh: Duration::from_secs(refresh),
        min_refresh: Duration::from_secs(o.min_refresh_secs.unwrap_or(60)),
        keys_max_age: Duration::from_secs(keys_max_age),
        user_claim: o.user_claim.map(Spanned::into_inner),
        groups_claim: o.groups_claim,
        groups_allowed: o.groups_allowed,
        require,
        identities,
    })
}

/// The block being checked: its name (for keys) and the file's targets.
struct Block<'a> {
    name: &'a str,
    targets: &'a [&'a str],
}

impl Block<'_> {
    fn key(&self, k: &str) -> String {
        format!("oidc \"{}\" {k}", self.name)
    }

    fn check_targets(&self, list: &Spanned<Vec<String>>, k: &str, p: &mut Problems) {
        for t in list.get_ref() {
            if t != "*" && !self.targets.contains(&t.as_str()) {
                p.at(
                    list.span(),
                    &self.key(k),
                    format!("no target named \"{t}\""),
                );
            }
        }
    }
}

fn identity_rule(
    r: RawIdentity,
    block_targets: &[String],
    block: &Block<'_>,
    users: &[&str],
    p: &mut Problems,
) -> IdentityRule {
    let key = |k: &str| block.key(k);
    if r.when.get_ref().is_empty() {
        p.at(
            r.when.span(),
            &key("identity.when"),
            "names no claim: a rule must say which tokens it takes",
        );
    }
    if r.user.get_ref().is_empty() {
        p.at(r.user.span(), &key("identity.user"), "must not be empty");
    } else if users.contains(&r.user.get_ref().as_str()) {
        p.at(
            r.user.span(),
            &key("identity.user"),
            "is a [[user]]'s name: token identities never share a password user's rules; name it apart",
        );
    }
    let when = claim_values(&r.when, &key("identity.when"), p);
    let targets = match &r.targets {
        Some(t) => {
            block.check_targets(t, "identity.targets", p);
            t.get_ref().clone()
        }
        None => block_targets.to_vec(),
    };
    IdentityRule {
        when,
        user: r.user.into_inner(),
        groups: r.groups,
        targets,
    }
}

/// `claim = value` or `claim = [values]`, as texts.
fn claim_values(
    table: &Spanned<BTreeMap<String, toml::Value>>,
    key: &str,
    p: &mut Problems,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (claim, value) in table.get_ref() {
        let values: Option<Vec<String>> = match value {
            toml::Value::Array(list) => list.iter().map(claim_text).collect(),
            one => claim_text(one).map(|v| vec![v]),
        };
        match values {
            Some(v) if !v.is_empty() => out.push((claim.clone(), v)),
            _ => p.at(
                table.span(),
                key,
                format!("claim \"{claim}\": give a string, number or boolean, or a list of them"),
            ),
        }
    }
    out
}

/// A claim value as the text a rule compares it by.
fn claim_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}
