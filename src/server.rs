//! Starts the gateway from a configuration: one pool per target, the
//! listeners, and shutdown on a token.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use sqlgate_postgres::{tls, FrontendConfig, Gateway, RelayLimits};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, TargetKind};
use crate::policy::engine::Engine;
use crate::pools::{mysql_hooks, pg_hooks};
use crate::store::writer::Recorder;

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    /// Where the PostgreSQL listener accepts clients.
    pub postgres_addr: Option<SocketAddr>,
    /// Where the MySQL listener accepts clients.
    pub mysql_addr: Option<SocketAddr>,
    /// Cancel to shut down.
    pub shutdown: CancellationToken,
    /// The policy engine both listeners judge with.
    pub engine: Arc<Engine>,
    /// What sessions are recorded in (`None`: recording is off).
    pub recorder: Option<Recorder>,
    /// Where the admin plane listens, if it does.
    pub admin_addr: Option<SocketAddr>,
    /// Statements held for approval (`None`: approvals are off).
    pub approvals: Option<crate::approvals::Approvals>,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens the recording store and starts its writer, when recording is on.
fn start_recorder(config: &Config) -> anyhow::Result<Option<Recorder>> {
    let r = &config.recording;
    if !r.enabled {
        tracing::warn!("[recording] enabled = false: sessions are not recorded");
        return Ok(None);
    }
    let instance = format!(
        "{}/{}",
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned()),
        std::process::id()
    );
    let signer = match &r.signing_key {
        Some(path) => Some((
            crate::store::checkpoint::Key::read(path)?,
            r.checkpoint_every,
        )),
        None => {
            tracing::warn!("[recording] has no signing_key_file: the trail's chain is not signed (sqlgate keygen makes a key)");
            None
        }
    };
    // The store's client blocks (PostgreSQL's runs a runtime of its own):
    // opened, and its trail verified, on a thread outside the gateway's
    // runtime, before the writer thread takes it.
    let started = std::thread::scope(|s| {
        s.spawn(|| {
            let store = crate::store::open(r)
                .with_context(|| format!("recording store {}", crate::store::location(r)))?;
            Recorder::start(store, r.flush, r.on_failure, &instance, signer, r.retain)
                .context("recording store")
        })
        .join()
    });
    let recorder = started
        .map_err(|_| anyhow::anyhow!("recording store: opening it failed"))??
        .with_capture(r.capture);
    tracing::info!(store = %crate::store::location(r), "recording sessions");
    Ok(Some(recorder))
}

/// Reads the policy files again and installs them; on any problem the
/// policy in force stays and the problems are returned.
pub fn reload_policy(config: &Config, engine: &Engine) -> Result<(), ConfigError> {
    let Some(policy) = &config.policy else {
        return Ok(());
    };
    let rules = policy.reload()?;
    tracing::info!(
        files = rules.files.len(),
        rules = rules.rules.len(),
        "policy reloaded"
    );
    engine.replace(Some(rules));
    let all_targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    crate::catalogs::want_masked_targets(engine, &all_targets);
    Ok(())
}

impl Running {
    /// Waits until every listener has stopped (after `shutdown` fires and
    /// sessions have drained or the grace period ran out).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        // Sessions have ended: their last records are committed before
        // the process goes.
        if let Some(r) = &self.recorder {
            let r = r.clone();
            let _ = tokio::task::spawn_blocking(move || r.flush()).await;
        }
    }
}

/// Binds the listeners and starts serving.
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();
    let engine = Arc::new(match &config.policy {
        Some(p) => {
            tracing::info!(
                files = p.rules.files.len(),
                rules = p.rules.rules.len(),
                "policy loaded"
            );
            let engine = Engine::new(Some(p.rules.clone()), p.cache_entries);
            match &p.hash_key {
                Some(key) => engine.with_hash_key(key.expose().as_bytes()),
                None => {
                    if p.rules.masks.iter().any(|m| {
                        matches!(
                            m.function,
                            crate::policy::mask::functions::MaskFunction::Hash
                        )
                    }) {
                        tracing::warn!("a masking rule hashes but [policy] has no hash_key_env or hash_key_file: a random key is used, so hashes differ between runs of the gateway");
                    }
                    engine
                }
            }
        }
        None => {
            tracing::warn!(
                "no [policy] configured: every statement is classified and logged, and allowed"
            );
            Engine::new(None, 10_000)
        }
    });
    let recorder = start_recorder(config)?;
    // Reviewed statements are held when someone can decide them: the
    // admin API has a token.
    let approvals = config
        .admin
        .as_ref()
        .filter(|a| !a.tokens.is_empty())
        .map(|_| {
            crate::approvals::Approvals::new().with_notifier(
                (!config.notify.is_empty())
                    .then(|| crate::approvals::notify::Notifier::start(config.notify.clone())),
            )
        });
    if approvals.is_none() {
        tracing::info!("approvals are off ([[admin.token]] names nobody who could decide): reviewed statements are refused");
    }
    // With the PostgreSQL store, requests are shared by every gateway
    // writing to it.
    let shared = match (&approvals, &config.recording.postgres) {
        (Some(a), Some(location)) => {
            let keep_parameters = config.recording.capture.parameters;
            match crate::approvals::shared::Shared::start(
                location,
                a,
                keep_parameters,
                shutdown.clone(),
            )
            .await
            {
                Ok(shared) => Some(shared),
                Err(e) => {
                    // Approvals still work, on this gateway only.
                    tracing::error!(error = %e, "approvals cannot be shared through the store: other gateways will not see this gateway's requests");
                    None
                }
            }
        }
        _ => None,
    };
    let providers = Arc::new(crate::oidc::Providers::new(
        &config.oidc,
        &config
            .users
            .iter()
            .map(|u| u.name.clone())
            .collect::<Vec<_>>(),
    )?);
    providers.keep_fresh();
    let live = Arc::new(sqlgate_net::live::LiveSessions::default());
    let counters = crate::admin::counters::Counters::new();
    let mut admin_addr = None;
    if let Some(admin) = &config.admin {
        let metrics = Arc::new(
            crate::admin::metrics::Metrics::new(recorder.clone())
                .with_approvals(approvals.clone())
                .with_sessions(live.clone(), engine.clone())
                .with_counters(counters.clone()),
        );
        let api = crate::admin::api::Api {
            admin: Arc::new(admin.clone()),
            approvals: approvals.clone(),
            live: live.clone(),
            recording: config
                .recording
                .enabled
                .then(|| Arc::new(config.recording.clone())),
            shared: shared.clone(),
        };
        let ready = crate::admin::ready::Readiness {
            targets: config
                .targets
                .iter()
                .map(|t| (t.name.clone(), t.host.clone(), t.port))
                .collect(),
            recorder: recorder.clone(),
        };
        let admin_tls = match &admin.tls {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let (addr, task) = crate::admin::start(
            admin.listen,
            metrics,
            api,
            ready,
            admin_tls,
            shutdown.clone(),
        )
        .await?;
        admin_addr = Some(addr);
        tasks.push(task);
    }
    let mut postgres_addr = None;
    let mut catalog_pools = crate::catalogs::Pools::default();
    if let Some(pg) = &config.postgres {
        let tls = match &pg.tls {
            Some((cert, key)) => Some(tls::server_config(cert, key)?),
            None => None,
        };
        let hooks = Arc::new(
            pg_hooks(config, engine.clone())?
                .with_recorder(recorder.clone())
                .with_approvals(approvals.clone())
                .with_providers(providers.clone())
                .with_counters(counters.clone()),
        );
        catalog_pools.postgres = hooks.pools();
        for (target, pool) in hooks.pools() {
            counters.watch_pool(&target, "postgres", Box::new(move || pool.stats()));
        }
        let gateway = Gateway::new(
            hooks,
            FrontendConfig {
                tls,
                require_tls: pg.require_tls,
                handshake_timeout: pg.handshake_timeout,
                limits: RelayLimits {
                    max_statement_len: pg.max_statement_bytes,
                },
                live: live.clone(),
            },
        );
        let listener = TcpListener::bind(pg.listen)
            .await
            .with_context(|| format!("cannot listen on {}", pg.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, tls = pg.tls.is_some(), "PostgreSQL listener ready");
        postgres_addr = Some(addr);
        tasks.push(tokio::spawn(sqlgate_postgres::server::serve(
            listener,
            gateway,
            shutdown.clone(),
            config.shutdown_grace,
        )));
    }
    let mut mysql_addr = None;
    if let Some(my) = &config.mysql {
        let hooks = mysql_hooks(config, engine.clone())?
            .with_recorder(recorder.clone())
            .with_approvals(approvals.clone())
            .with_providers(providers.clone())
            .with_counters(counters.clone());
        catalog_pools.mysql = hooks.pools();
        for (target, pool) in hooks.pools() {
            counters.watch_pool(&target, "mysql", Box::new(move || pool.stats()));
        }
        let greeting_pool = config
            .targets
            .iter()
            .find(|t| t.kind == TargetKind::Mysql)
            .and_then(|t| hooks.pool(&t.name))
            .with_context(|| {
                format!(
                    "{}: [mysql] needs at least one target of kind \"mysql\"",
                    config.path.display()
                )
            })?;
        let tls = match &my.tls {
            Some((cert, key)) => {
                // The same certificate, without PostgreSQL's ALPN name.
                let mut c = (*tls::server_config(cert, key)?).clone();
                c.alpn_protocols.clear();
                Some(Arc::new(c))
            }
            None => None,
        };
        let hooks = Arc::new(hooks);
        let gateway = sqlgate_mysql::Gateway::new(
            hooks,
            sqlgate_mysql::FrontendConfig {
                tls,
                require_tls: my.require_tls,
                handshake_timeout: my.handshake_timeout,
                limits: sqlgate_mysql::RelayLimits {
                    max_statement_len: my.max_statement_bytes,
                },
                live: live.clone(),
                greeting_pool,
                caching_sha2: my.caching_sha2,
                local_infile: my.local_infile,
            },
        );
        let listener = TcpListener::bind(my.listen)
            .await
            .with_context(|| format!("cannot listen on {}", my.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, tls = my.tls.is_some(), "MySQL listener ready");
        mysql_addr = Some(addr);
        tasks.push(tokio::spawn(sqlgate_mysql::server::serve(
            listener,
            gateway,
            shutdown.clone(),
            config.shutdown_grace,
        )));
    }
    let reader = crate::catalogs::read_catalogs(engine.clone(), catalog_pools);
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = reader => {}
            _ = stop.cancelled() => {}
        }
    });
    let all_targets: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    crate::catalogs::want_masked_targets(&engine, &all_targets);
    if tasks.is_empty() {
        anyhow::bail!(
            "{}: no listener configured (add a [postgres] or [mysql] section)",
            config.path.display()
        );
    }
    Ok(Running {
        postgres_addr,
        mysql_addr,
        shutdown,
        engine,
        recorder,
        admin_addr,
        approvals,
        tasks,
    })
}
