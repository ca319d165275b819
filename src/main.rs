//! The `sqlgate` command: serve, check a configuration, make a local
//! certificate, hash a password.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlgate::config::Config;
use sqlgate::policy::parse::SqlDialect;
use sqlgate_postgres::ScramSecret;
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: a session's records are allocated on a
/// relay's worker and freed on the recorder's thread, and glibc's arenas
/// took a lock (and a futex wake) for each such free; measured in
/// BENCHMARKS.md. Freed memory returns to the system at once
/// (`sqlgate::allocator`).
#[global_allocator]
static ALLOCATOR: sqlgate::allocator::Allocator = sqlgate::allocator::Allocator;

#[derive(Parser)]
#[command(
    name = "sqlgate",
    version,
    about = "A database gateway that judges every SQL statement"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file and report every problem.
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Show how the policy judges a statement text for a user on a target
    /// (tags, matching rules, verdict), without touching any database.
    Explain {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The gateway user.
        #[arg(long)]
        user: String,
        /// The target (its kind decides the SQL dialect).
        #[arg(long)]
        target: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The statement text (several statements separated by `;`).
        sql: String,
    },
    /// Write a self-signed certificate and key (server.crt, server.key)
    /// for local TLS.
    Cert {
        /// Directory to write into.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Host names or addresses the certificate is for.
        #[arg(long = "name", default_values = ["localhost", "127.0.0.1"])]
        names: Vec<String>,
    },
    /// Read a password on stdin and print its SCRAM-SHA-256 verifier for a
    /// user's `scram_verifier`.
    Passwd,
    /// Write a new checkpoint signing key (audit.key, readable by the
    /// gateway only) and its public key (audit.pub) for `audit verify`.
    Keygen {
        /// Directory to write into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Recorded sessions: list, show, export.
    Sessions {
        /// The configuration file (its `[store]` says where records are).
        #[arg(long, short, global = true, default_value = "sqlgate.toml")]
        config: PathBuf,
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// Statements held for approval: list, show, approve, deny (through
    /// the admin API, as the person whose token is in
    /// SQLGATE_ADMIN_TOKEN).
    Approvals {
        /// The gateway's admin API.
        #[arg(long, global = true, default_value = "http://127.0.0.1:9187")]
        admin_url: String,
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Get a token from an identity provider for a token login (device
    /// flow: open the URL shown, enter the code) and print it, for
    /// `PGPASSWORD=$(sqlgate login ...)`. Cached until a minute before it
    /// expires.
    Login {
        /// The issuer (its discovery document names the endpoints).
        #[arg(long, env = "SQLGATE_OIDC_ISSUER")]
        issuer: String,
        /// The public client registered for sqlgate at the provider (the
        /// ID token's audience).
        #[arg(long, env = "SQLGATE_OIDC_CLIENT_ID")]
        client_id: String,
        /// Scopes to ask for.
        #[arg(long, default_value = "openid email profile")]
        scope: String,
        /// An `audience` parameter, for providers that take one.
        #[arg(long)]
        audience: Option<String>,
        /// Roots for the issuer's TLS (default: the public web roots).
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Ignore a cached token.
        #[arg(long)]
        fresh: bool,
    },
    /// The audit trail: verify that no record was edited, deleted,
    /// reordered or cut.
    Audit {
        /// The configuration file.
        #[arg(long, short, global = true, default_value = "sqlgate.toml")]
        config: PathBuf,
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum ApprovalsCommand {
    /// Requests, newest first.
    List,
    /// One request: who asks, the statements with their tags and values,
    /// the rule, the approvals so far.
    Show {
        /// The request's number.
        id: u64,
    },
    /// Approve a request (the statement runs once enough people have).
    Approve {
        /// The request's number.
        id: u64,
        /// Why (optional).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a request (the statement fails and never runs).
    Deny {
        /// The request's number.
        id: u64,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Sessions, newest first.
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// Only this target's.
        #[arg(long)]
        target: Option<String>,
        /// Started at or after (Unix seconds).
        #[arg(long)]
        since: Option<i64>,
        /// Started before (Unix seconds).
        #[arg(long)]
        until: Option<i64>,
        /// Only sessions with a refused statement.
        #[arg(long)]
        refused: bool,
    },
    /// One session's statements, verdicts and tags.
    Show {
        /// The session's id.
        id: String,
    },
    /// A session as a terminal transcript with its original pacing.
    Replay {
        /// The session's id.
        id: String,
        /// Faster (2) or slower (0.5) than it happened.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// No pauses.
        #[arg(long)]
        no_wait: bool,
    },
    /// The sessions open now (through the admin API, as the person whose
    /// token is in SQLGATE_ADMIN_TOKEN).
    Live {
        /// The gateway's admin API.
        #[arg(long, default_value = "http://127.0.0.1:9187")]
        admin_url: String,
    },
    /// End an open session at its next idle point (a running statement
    /// completes first): `sqlgate sessions end postgres 12`.
    End {
        /// `postgres` or `mysql`.
        protocol: String,
        /// Its id, as `sessions live` lists it.
        id: u64,
        /// The gateway's admin API.
        #[arg(long, default_value = "http://127.0.0.1:9187")]
        admin_url: String,
    },
    /// Sessions as JSON lines, one event a line (for a SIEM).
    Export {
        /// The sessions' ids (none: `--all`).
        ids: Vec<String>,
        /// Every session.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the trail; exit 1 at the first broken link.
    Verify {
        /// The public key of the checkpoints' signing key (without it,
        /// signatures are not checked).
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    sqlgate::allocator::return_freed_memory_at_once();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sqlgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            sqlgate::install_crypto_provider();
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            init_logging(config.log_format);
            if let Err(e) = sqlgate::allocator::no_huge_pages() {
                tracing::warn!(error = %e, "cannot turn transparent huge pages off for this process: idle sessions will hold more memory");
            }
            let workers = match config.worker_threads {
                Some(n) => Some(n),
                // Tokio's own setting, as it reads it.
                None if std::env::var_os("TOKIO_WORKER_THREADS").is_some() => None,
                None => {
                    let here = config
                        .targets
                        .iter()
                        .any(|t| sqlgate::runtime::is_this_machine(&t.host));
                    let n = sqlgate::runtime::default_workers(sqlgate::runtime::cpus(), here);
                    if here {
                        tracing::info!(workers = n, "runtime: a worker per CPU but one, left to the database on this machine ([gateway] worker_threads sets it)");
                    } else {
                        tracing::info!(
                            workers = n,
                            "runtime: a worker per CPU ([gateway] worker_threads sets it)"
                        );
                    }
                    Some(n)
                }
            };
            let rt = sqlgate::runtime::builder(workers)
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            rt.block_on(serve(config))?;
            // Work still running past the grace period (a judgement off
            // the workers) does not hold the process.
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config } => match Config::load(&config) {
            Ok(c) => {
                let policy = match &c.policy {
                    Some(p) => format!(
                        "{} rules in {} policy files",
                        p.rules.rules.len(),
                        p.rules.files.len()
                    ),
                    None => "no policy".to_owned(),
                };
                println!(
                    "{}: ok ({} targets, {} users, {} identity providers, {policy})",
                    config.display(),
                    c.targets.len(),
                    c.users.len(),
                    c.oidc.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Explain {
            config,
            user,
            target,
            format,
            sql,
        } => {
            let config = match Config::load_offline(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let t = config
                .target(&target)
                .with_context(|| format!("no target \"{target}\" in the configuration"))?;
            let dialect = match t.kind {
                sqlgate::config::TargetKind::Postgres => SqlDialect::Postgres,
                sqlgate::config::TargetKind::Mysql => SqlDialect::Mysql,
            };
            // A MySQL target's statements reach its database only.
            let database = (dialect == SqlDialect::Mysql).then(|| t.database.clone());
            // A password user's groups, or a token identity's from its
            // `[[oidc.identity]]` rule.
            let groups = config
                .users
                .iter()
                .find(|u| u.name == user)
                .map(|u| u.groups.clone())
                .or_else(|| {
                    config
                        .oidc
                        .iter()
                        .flat_map(|p| &p.identities)
                        .find(|r| r.user == user)
                        .map(|r| r.groups.clone())
                })
                .with_context(|| {
                    format!(
                        "no user \"{user}\" in the configuration ([[user]] or [[oidc.identity]])"
                    )
                })?;
            // Masking rules that apply need the target's catalog for the
            // plan: read it with the gateway's credentials.
            let masked = config.policy.as_ref().is_some_and(|p| {
                p.rules
                    .masks
                    .iter()
                    .any(|m| m.applies(&user, &groups, &target))
            });
            let catalog = masked.then(|| {
                sqlgate::install_crypto_provider();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        sqlgate::catalogs::read_target(&config, &target),
                    )
                    .await
                    .map_err(|_| anyhow::anyhow!("timed out"))?
                })
            });
            let catalog = catalog.map(|r| r.map_err(|e: anyhow::Error| format!("{e:#}")));
            let e = sqlgate::policy::explain::explain(
                config.policy.as_ref().map(|p| &p.rules),
                dialect,
                &user,
                &groups,
                &target,
                database.as_deref(),
                &sql,
                catalog.as_ref().map(|r| r.as_ref().map_err(Clone::clone)),
            );
            match format {
                Format::Text => out(&sqlgate::policy::explain::render(&e)),
                Format::Json => out(&format!("{e:#}\n")),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cert { out, names } => {
            let (crt, key) = sqlgate::certs::self_signed(&out, &names)?;
            println!("wrote {} and {}", crt.display(), key.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { out } => {
            use std::os::unix::fs::OpenOptionsExt;
            let key = sqlgate::store::checkpoint::Key::generate();
            let path = out.join("audit.key");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| {
                    format!("{} (an existing key is never overwritten)", path.display())
                })?;
            std::io::Write::write_all(&mut f, key.to_file_text().as_bytes())?;
            std::fs::write(out.join("audit.pub"), key.public_text())?;
            println!(
                "wrote {} (signing key: [recording] signing_key_file) and {} (for sqlgate audit verify --public-key)",
                path.display(),
                out.join("audit.pub").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Approvals { admin_url, command } => {
            let client = sqlgate::approvals::cli::Client::from_env(&admin_url)?;
            let text = match command {
                ApprovalsCommand::List => client.list()?,
                ApprovalsCommand::Show { id } => client.show(id)?,
                ApprovalsCommand::Approve { id, reason } => {
                    client.approve(id, reason.as_deref())?
                }
                ApprovalsCommand::Deny { id, reason } => client.deny(id, &reason)?,
            };
            out(&text);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions {
            command: SessionsCommand::Live { admin_url },
            ..
        } => admin_call(&admin_url, |c| c.live_sessions()),
        Command::Sessions {
            command:
                SessionsCommand::End {
                    protocol,
                    id,
                    admin_url,
                },
            ..
        } => admin_call(&admin_url, |c| c.end_session(&protocol, id)),
        Command::Sessions { config, command } => {
            let mut store = open_store(&config)?;
            let store = &mut *store;
            use sqlgate::store::cli;
            match command {
                SessionsCommand::List {
                    user,
                    target,
                    since,
                    until,
                    refused,
                } => {
                    let filter = cli::Filter {
                        user,
                        target,
                        since_us: since.map(|s| s * 1_000_000),
                        until_us: until.map(|s| s * 1_000_000),
                        refused,
                    };
                    out(&cli::list(store, &filter)?);
                }
                SessionsCommand::Show { id } => match cli::show(store, &id)? {
                    Some(text) => out(&text),
                    None => {
                        eprintln!("no session {id}");
                        return Ok(ExitCode::FAILURE);
                    }
                },
                SessionsCommand::Replay { id, speed, no_wait } => {
                    let speed = (!no_wait).then_some(speed.max(0.001));
                    let mut out = std::io::stdout().lock();
                    if !cli::replay(store, &id, speed, &mut out)? {
                        eprintln!("no session {id}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
                SessionsCommand::Export { ids, all } => {
                    let ids = if all { store.session_ids()? } else { ids };
                    out(&cli::export(store, &ids)?);
                }
                // Answered above, through the admin API.
                SessionsCommand::Live { .. } | SessionsCommand::End { .. } => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            config,
            command: AuditCommand::Verify { public_key },
        } => {
            let mut store = open_store(&config)?;
            let store = &mut *store;
            let public = public_key
                .map(|p| sqlgate::store::checkpoint::PublicKey::read(&p))
                .transpose()?;
            let (text, intact) = sqlgate::store::cli::verify_text(store, public.as_ref())?;
            out(&text);
            Ok(if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Login {
            issuer,
            client_id,
            scope,
            audience,
            ca_file,
            fresh,
        } => {
            sqlgate::install_crypto_provider();
            let req = sqlgate::oidc::login::LoginRequest {
                issuer,
                client_id,
                scope,
                audience,
                ca_file,
                fresh,
            };
            match sqlgate::oidc::login::login(&req, &mut std::io::stderr()) {
                Ok(token) => {
                    println!("{token}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("sqlgate login: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Passwd => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            println!(
                "{}",
                ScramSecret::from_password(password.as_bytes()).verifier()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One call of the admin API's client, its output printed.
fn admin_call(
    admin_url: &str,
    call: impl FnOnce(
        &sqlgate::approvals::cli::Client,
    ) -> Result<String, sqlgate::approvals::cli::CliError>,
) -> anyhow::Result<ExitCode> {
    let client = sqlgate::approvals::cli::Client::from_env(admin_url)?;
    out(&call(&client)?);
    Ok(ExitCode::SUCCESS)
}

/// The recording store a configuration names.
fn open_store(config: &std::path::Path) -> anyhow::Result<Box<dyn sqlgate::store::Store>> {
    let config = Config::load_offline(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = &config.recording;
    if r.postgres.is_none() && !r.path.exists() {
        anyhow::bail!("no recording store at {}", r.path.display());
    }
    Ok(sqlgate::store::open_to_read(r)?)
}

fn init_logging(format: sqlgate::logs::Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        sqlgate::logs::Format::Json => lines.json().init(),
        sqlgate::logs::Format::Text => lines.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let running = sqlgate::server::start(&config).await?;
    let shutdown = running.shutdown.clone();
    let engine = running.engine.clone();
    let grace = config.shutdown_grace;
    let config = std::sync::Arc::new(config);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch SIGHUP: policy reload is off");
                return;
            }
        };
        while hup.recv().await.is_some() {
            if let Err(e) = sqlgate::server::reload_policy(&config, &engine) {
                for problem in &e.problems {
                    tracing::error!(%problem, "policy reload failed; the policy in force stays");
                }
            }
        }
    });
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new sessions; idle sessions close now");
        shutdown.cancel();
        // The grace period is a promise: kept by a thread of its own, which
        // no busy worker, stuck server or judgement can delay.
        std::thread::spawn(move || {
            std::thread::sleep(grace + std::time::Duration::from_secs(1));
            tracing::warn!("shutdown grace period over: exiting with sessions still open");
            std::process::exit(1);
        });
        // A second signal: stop now.
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(1);
    });
    running.wait().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Writes a command's output to stdout. A reader that stops early (`|
/// head`) is not an error: the rest is dropped and the command ends as
/// it would have, where `print!` would panic on the closed pipe.
fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => eprintln!("sqlgate: writing the output: {e}"),
    }
}
