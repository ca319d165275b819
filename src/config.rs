//! The one configuration file: listeners, targets, users.
//!
//! Loading has two steps, as in ripgrep's flags: [`RawConfig`] is exactly
//! what serde reads from the TOML (unknown keys are errors), and
//! [`Config`] is the validated, typed result with secrets resolved. Every
//! problem found is reported, each as `file:line: key: message`; a missing
//! environment variable is named, its value never shown.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sqlgate_postgres::tls::ServerTls;
use sqlgate_postgres::{AuthMethod, ScramSecret, Secret};
use toml::Spanned;

pub(crate) mod check;
pub(crate) use check::{existing_file, secret, tls_pair, Problems};
pub use check::{target_listed, ConfigError};

/// The configuration file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    postgres: Option<RawListener>,
    mysql: Option<RawListener>,
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default, rename = "target")]
    targets: Vec<RawTarget>,
    #[serde(default, rename = "user")]
    users: Vec<RawUser>,
    policy: Option<RawPolicy>,
    store: Option<crate::store::config::RawStore>,
    recording: Option<crate::store::config::RawRecording>,
    admin: Option<crate::admin::config::RawAdmin>,
    log: Option<crate::logs::RawLog>,
    #[serde(default)]
    notify: Vec<crate::approvals::notify::RawNotify>,
    #[serde(default)]
    oidc: Vec<crate::oidc::config::RawOidc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    files: Spanned<Vec<String>>,
    cache_entries: Option<Spanned<usize>>,
    hash_key_env: Option<Spanned<String>>,
    hash_key_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    shutdown_grace_secs: Option<u64>,
    worker_threads: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    listen: Spanned<String>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    require_tls: Option<Spanned<bool>>,
    handshake_timeout_secs: Option<u64>,
    max_statement_bytes: Option<usize>,
    default_auth: Option<Spanned<String>>,
    local_infile: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Spanned<String>,
    kind: Spanned<String>,
    host: String,
    port: Option<u16>,
    database: String,
    user: String,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    pool_size: Option<Spanned<usize>>,
    max_per_user: Option<Spanned<usize>>,
    acquire_timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    tls: Option<Spanned<String>>,
    tls_ca_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    scram_verifier: Option<Spanned<String>>,
    auth: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<String>,
    targets: Spanned<Vec<String>>,
    default_target: Option<Spanned<String>>,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// The PostgreSQL listener, if configured.
    pub postgres: Option<Listener>,
    /// The MySQL listener, if configured.
    pub mysql: Option<Listener>,
    /// How long shutdown waits for busy sessions.
    pub shutdown_grace: Duration,
    /// Runtime worker threads; `None` for one per CPU.
    pub worker_threads: Option<usize>,
    /// `[log] format`.
    pub log_format: crate::logs::Format,
    /// `[[notify]]`: webhooks told of approval requests.
    pub notify: Vec<crate::approvals::notify::Webhook>,
    /// Database targets clients can reach.
    pub targets: Vec<Target>,
    /// Gateway users.
    pub users: Vec<User>,
    /// `[[oidc]]`: identity providers whose tokens are logins.
    pub oidc: Vec<crate::oidc::config::Provider>,
    /// The risk policy, if `[policy]` is configured.
    pub policy: Option<PolicyConfig>,
    /// `[store]` and `[recording]`.
    pub recording: crate::store::config::RecordingConfig,
    /// `[admin]`: the admin plane's address and tokens (none: not
    /// served).
    pub admin: Option<crate::admin::config::Admin>,
}

/// `[policy]`: where the rules are and the loaded rules.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// File patterns, relative to `base`.
    pub files: Vec<String>,
    /// The configuration file's directory.
    pub base: PathBuf,
    /// Classified statement texts kept per dialect.
    pub cache_entries: usize,
    /// The rules as loaded at start.
    pub rules: crate::policy::rules::Policy,
    /// The key of the `hash` masking function (`None`: a random key per
    /// process, so hashes agree only within one run of the gateway).
    pub hash_key: Option<Secret>,
}

impl PolicyConfig {
    /// Reads the policy files again (SIGHUP).
    pub fn reload(&self) -> Result<crate::policy::rules::Policy, ConfigError> {
        crate::policy::rules::Policy::load(&self.files, &self.base)
    }
}

/// Default longest statement text: judging one costs about 80 times its
/// size in memory and 0.12 s per MiB (`benches/judge_size.rs`); at 8 MiB
/// a text takes about a second and 600 MiB, and `policy::offload` lets
/// two such judgements run at once.
pub const DEFAULT_MAX_STATEMENT: usize = 8 << 20;

/// A listener (PostgreSQL or MySQL protocol).
#[derive(Debug, Clone)]
pub struct Listener {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain and key for client TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Refuse clients without TLS.
    pub require_tls: bool,
    /// Time from connect to authenticated.
    pub handshake_timeout: Duration,
    /// Longest Query/Parse message.
    pub max_statement_bytes: usize,
    /// MySQL only: the auth plugin the greeting names.
    pub caching_sha2: bool,
    /// MySQL only: allow `LOAD DATA LOCAL INFILE`.
    pub local_infile: bool,
}

/// The protocol a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

/// A database clients reach through the gateway.
#[derive(Debug, Clone)]
pub struct Target {
    /// Name clients use as database name.
    pub name: String,
    /// Protocol.
    pub kind: TargetKind,
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database on the server.
    pub database: String,
    /// Server-side user.
    pub user: String,
    /// Server-side password.
    pub password: Option<Secret>,
    /// Most server connections.
    pub pool_size: usize,
    /// Most server connections one gateway user may hold (`None`: the
    /// whole pool).
    pub max_per_user: Option<usize>,
    /// Wait for a free connection.
    pub acquire_timeout: Duration,
    /// Connect + authenticate limit.
    pub connect_timeout: Duration,
    /// Idle connections older than this are closed.
    pub idle_timeout: Duration,
    /// TLS to the server.
    pub tls: ServerTls,
}

/// A gateway user.
#[derive(Debug, Clone)]
pub struct User {
    /// Login name.
    pub name: String,
    /// How they authenticate.
    pub auth: AuthMethod,
    /// Password verifier.
    pub secret: ScramSecret,
    /// Groups (for policies).
    pub groups: Vec<String>,
    /// Targets they may reach; `*` for all.
    pub targets: Vec<String>,
    /// Where a MySQL connection that names no database goes (when the
    /// user may use several targets).
    pub default_target: Option<String>,
    /// Password hashes for MySQL logins (needs the password, not only a
    /// SCRAM verifier).
    pub mysql_secret: Option<sqlgate_mysql::auth::MysqlSecret>,
}

impl User {
    /// May this user use the target?
    pub fn may_use(&self, target: &str) -> bool {
        target_listed(&self.targets, target)
    }
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("{}: cannot read: {e}", path.display())],
        })?;
        Self::parse(path, &text)
    }

    /// Reads a configuration for a tool that never connects (`sqlgate
    /// explain`): secrets need not resolve.
    pub fn load_offline(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("{}: cannot read: {e}", path.display())],
        })?;
        Self::parse_with(path, &text, true)
    }

    /// Parses and validates configuration text; `path` names it in errors
    /// and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Self::parse_with(path, text, false)
    }

    fn parse_with(path: &Path, text: &str, offline: bool) -> Result<Config, ConfigError> {
        let mut p = Problems::new(path, text).offline_if(offline);
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let line = p.line(&span);
                let message = e.message().trim().to_owned();
                return Err(ConfigError {
                    problems: vec![format!("{}:{line}: {message}", path.display())],
                });
            }
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        let config = validate(raw, &base, path, &mut p);
        let problems = p.into_list();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// A target by name.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

fn secs(v: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(v.unwrap_or(default))
}

fn validate(raw: RawConfig, base: &Path, path: &Path, p: &mut Problems) -> Config {
    let postgres = raw.postgres.map(|l| listener(l, "postgres", base, p));
    let mysql = raw.mysql.map(|l| listener(l, "mysql", base, p));
    let mut names = HashSet::new();
    let targets: Vec<Target> = raw
        .targets
        .into_iter()
        .map(|t| {
            let name = t.name.get_ref().clone();
            if !names.insert(name.clone()) {
                p.at(
                    t.name.span(),
                    "target.name",
                    format!("target \"{name}\" is defined twice"),
                );
            }
            let key = |k: &str| format!("target \"{name}\" {k}");
            let kind = match t.kind.get_ref().as_str() {
                "postgres" => TargetKind::Postgres,
                "mysql" => TargetKind::Mysql,
                other => {
                    p.at(
                        t.kind.span(),
                        &key("kind"),
                        format!("unknown kind \"{other}\" (expected \"postgres\" or \"mysql\")"),
                    );
                    TargetKind::Postgres
                }
            };
            let password = secret(
                base,
                t.password_env.as_ref(),
                t.password_file.as_ref(),
                &key("password"),
                p,
            );
            let pool_size = t.pool_size.as_ref().map(|s| *s.get_ref()).unwrap_or(20);
            if let Some(s) = t.pool_size.as_ref().filter(|s| *s.get_ref() == 0) {
                p.at(s.span(), &key("pool_size"), "must be at least 1");
            }
            let max_per_user = t.max_per_user.as_ref().map(|s| *s.get_ref());
            if let Some(s) = t.max_per_user.as_ref().filter(|s| *s.get_ref() == 0) {
                p.at(s.span(), &key("max_per_user"), "must be at least 1");
            }
            let tls = match t.tls.as_ref().map(|s| (s.get_ref().as_str(), s.span())) {
                None | Some(("disable", _)) => ServerTls::Disable,
                Some(("require", _)) => ServerTls::Require,
                Some(("verify-full", span)) => match &t.tls_ca_file {
                    Some(ca) => ServerTls::VerifyFull {
                        ca_file: existing_file(base, ca, &key("tls_ca_file"), p),
                    },
                    None => {
                        p.at(span, &key("tls"), "verify-full needs tls_ca_file");
                        ServerTls::Disable
                    }
                },
                Some((other, span)) => {
                    p.at(
                        span,
                        &key("tls"),
                        format!(
                            "unknown mode \"{other}\" (expected disable, require or verify-full)"
                        ),
                    );
                    ServerTls::Disable
                }
            };
            Target {
                name,
                kind,
                host: t.host,
                port: t.port.unwrap_or(match kind {
                    TargetKind::Postgres => 5432,
                    TargetKind::Mysql => 3306,
                }),
                database: t.database,
                user: t.user,
                password,
                pool_size,
                max_per_user,
                acquire_timeout: secs(t.acquire_timeout_secs, 5),
                connect_timeout: secs(t.connect_timeout_secs, 5),
                idle_timeout: secs(t.idle_timeout_secs, 600),
                tls,
            }
        })
        .collect();
    let mysql_targets: HashSet<String> = targets
        .iter()
        .filter(|t| t.kind == TargetKind::Mysql)
        .map(|t| t.name.clone())
        .collect();
    let mut user_names = HashSet::new();
    let users: Vec<User> = raw
        .users
        .into_iter()
        .filter_map(|u| {
            let name = u.name.get_ref().clone();
            if !user_names.insert(name.clone()) {
                p.at(
                    u.name.span(),
                    "user.name",
                    format!("user \"{name}\" is defined twice"),
                );
            }
            let key = |k: &str| format!("user \"{name}\" {k}");
            for t in u.targets.get_ref() {
                if t != "*" && !names.contains(t) {
                    p.at(
                        u.targets.span(),
                        &key("targets"),
                        format!("no target named \"{t}\""),
                    );
                }
            }
            let auth = match u.auth.as_ref().map(|a| (a.get_ref().as_str(), a.span())) {
                None | Some(("scram-sha-256", _)) => AuthMethod::ScramSha256,
                Some(("password", _)) => AuthMethod::Password,
                Some((other, span)) => {
                    p.at(
                        span,
                        &key("auth"),
                        format!("unknown method \"{other}\" (expected scram-sha-256 or password)"),
                    );
                    AuthMethod::ScramSha256
                }
            };
            let mut mysql_secret = None;
            let secret = match &u.scram_verifier {
                Some(v) => {
                    if u.password_env.is_some() || u.password_file.is_some() {
                        p.at(
                            v.span(),
                            &key("scram_verifier"),
                            "give either a verifier or a password, not both",
                        );
                    }
                    ScramSecret::parse(v.get_ref())
                        .map_err(|e| p.at(v.span(), &key("scram_verifier"), e))
                        .ok()
                }
                None => match secret(
                    base,
                    u.password_env.as_ref(),
                    u.password_file.as_ref(),
                    &key("password"),
                    p,
                ) {
                    Some(pw) => {
                        mysql_secret = Some(sqlgate_mysql::auth::MysqlSecret::from_password(pw.expose().as_bytes()));
                        Some(ScramSecret::from_password(pw.expose().as_bytes()))
                    }
                    None => {
                        let missing = u.password_env.is_none() && u.password_file.is_none();
                        if missing {
                            p.at(
                                u.name.span(),
                                &key("password"),
                                "needs password_env, password_file or scram_verifier",
                            );
                        }
                        None
                    }
                },
            };
            let reaches_mysql = u.targets.get_ref().iter().any(|t| {
                mysql_targets.contains(t) || (t == "*" && !mysql_targets.is_empty())
            });
            if reaches_mysql && mysql_secret.is_none() && u.scram_verifier.is_some() {
                p.at(u.targets.span(), &key("targets"), "MySQL targets need the user's password (password_env or password_file): a SCRAM verifier cannot check MySQL logins");
            }
            let default_target = u.default_target.as_ref().map(|d| {
                let known = targets.iter().any(|t| &t.name == d.get_ref());
                if !known || !target_listed(u.targets.get_ref(), d.get_ref()) {
                    p.at(
                        d.span(),
                        &key("default_target"),
                        "must name a target of the user's `targets`",
                    );
                }
                d.get_ref().clone()
            });
            Some(User {
                name,
                auth,
                secret: secret?,
                groups: u.groups,
                targets: u.targets.into_inner(),
                default_target,
                mysql_secret,
            })
        })
        .collect();
    if let Some(w) = raw
        .gateway
        .worker_threads
        .as_ref()
        .filter(|w| *w.get_ref() == 0)
    {
        p.at(w.span(), "gateway.worker_threads", "must be at least 1");
    }
    let policy = raw.policy.and_then(|rp| {
        if rp.files.get_ref().is_empty() {
            p.at(rp.files.span(), "policy.files", "names no files");
        }
        let hash_key = secret(
            base,
            rp.hash_key_env.as_ref(),
            rp.hash_key_file.as_ref(),
            "policy.hash_key",
            p,
        );
        let files = rp.files.into_inner();
        match crate::policy::rules::Policy::load(&files, base) {
            Ok(rules) => Some(PolicyConfig {
                files,
                base: base.to_owned(),
                cache_entries: rp.cache_entries.map_or(10_000, Spanned::into_inner),
                rules,
                hash_key,
            }),
            Err(e) => {
                p.extend(e.problems);
                None
            }
        }
    });
    let recording = crate::store::config::parse(raw.store, raw.recording, base, p);
    let admin = crate::admin::config::parse(raw.admin, base, p);
    let log_format = crate::logs::parse(raw.log, p);
    let notify = crate::approvals::notify::parse(raw.notify, p);
    let oidc = {
        let user_names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        let target_names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        crate::oidc::config::parse(raw.oidc, &user_names, &target_names, base, p)
    };
    Config {
        oidc,
        policy,
        recording,
        admin,
        worker_threads: raw.gateway.worker_threads.map(Spanned::into_inner),
        log_format,
        notify,
        path: path.to_owned(),
        postgres,
        mysql,
        shutdown_grace: secs(raw.gateway.shutdown_grace_secs, 30),
        targets,
        users,
    }
}

fn listener(l: RawListener, section: &str, base: &Path, p: &mut Problems) -> Listener {
    let listen = l.listen.get_ref().parse().unwrap_or_else(|e| {
        p.at(
            l.listen.span(),
            &format!("{section}.listen"),
            format!("not an address:port ({e})"),
        );
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    let tls = tls_pair(base, l.tls_cert.as_ref(), l.tls_key.as_ref(), section, p);
    let require_tls = l.require_tls.as_ref().is_some_and(|r| *r.get_ref());
    if let Some(r) = l
        .require_tls
        .as_ref()
        .filter(|_| require_tls && tls.is_none())
    {
        p.at(
            r.span(),
            &format!("{section}.require_tls"),
            "needs tls_cert and tls_key",
        );
    }
    let caching_sha2 = match l
        .default_auth
        .as_ref()
        .map(|a| (a.get_ref().as_str(), a.span()))
    {
        None | Some(("mysql_native_password", _)) => false,
        Some(("caching_sha2_password", _)) if section == "mysql" => true,
        Some((other, span)) => {
            let expected = if section == "mysql" {
                "mysql_native_password or caching_sha2_password"
            } else {
                "nothing: default_auth is a [mysql] setting"
            };
            p.at(
                span,
                &format!("{section}.default_auth"),
                format!("unknown \"{other}\" (expected {expected})"),
            );
            false
        }
    };
    let local_infile = l.local_infile.as_ref().is_some_and(|v| *v.get_ref());
    if let Some(v) = l.local_infile.as_ref().filter(|_| section != "mysql") {
        p.at(
            v.span(),
            &format!("{section}.local_infile"),
            "local_infile is a [mysql] setting",
        );
    }
    Listener {
        caching_sha2,
        local_infile,
        listen,
        tls,
        require_tls,
        handshake_timeout: secs(l.handshake_timeout_secs, 15),
        max_statement_bytes: l.max_statement_bytes.unwrap_or(DEFAULT_MAX_STATEMENT),
    }
}

#[cfg(test)]
mod tests;
