//! The hooks each listener runs with, built from the configuration: the
//! gateway users, one pool of server connections per target (with the
//! gateway's own credentials and TLS to the server), and the policy
//! engine. The listeners (`server.rs`) and the catalog reader
//! (`catalogs.rs`) both build them here.
//!
//! This module must never hand a pool credentials other than its
//! target's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlgate_postgres::backend::BackendConfig;
use sqlgate_postgres::tls;

use crate::auth::Users;
use crate::config::{Config, Target, TargetKind};
use crate::hooks::{MysqlHooks, PgHooks};
use crate::policy::engine::Engine;

/// The PostgreSQL listener's hooks: the users, a pool per PostgreSQL
/// target, and the policy engine.
pub fn pg_hooks(config: &Config, engine: Arc<Engine>) -> anyhow::Result<PgHooks> {
    let mut pools = HashMap::new();
    for t in targets(config, TargetKind::Postgres) {
        let backend = BackendConfig {
            target: t.name.clone(),
            host: t.host.clone(),
            port: t.port,
            database: t.database.clone(),
            user: t.user.clone(),
            password: t.password.clone(),
            tls: server_tls(t)?,
            connect_timeout: t.connect_timeout,
        };
        pools.insert(
            t.name.clone(),
            sqlgate_postgres::new_pool(backend, pool_config(t)),
        );
    }
    Ok(PgHooks::new(Users::new(&config.users), pools, engine))
}

/// The MySQL listener's hooks: the users, a pool per MySQL target, and
/// the policy engine.
pub fn mysql_hooks(config: &Config, engine: Arc<Engine>) -> anyhow::Result<MysqlHooks> {
    let mut pools = HashMap::new();
    for t in targets(config, TargetKind::Mysql) {
        let backend = sqlgate_mysql::backend::BackendConfig {
            target: t.name.clone(),
            host: t.host.clone(),
            port: t.port,
            database: t.database.clone(),
            user: t.user.clone(),
            password: t.password.clone(),
            tls: server_tls(t)?,
            connect_timeout: t.connect_timeout,
        };
        pools.insert(
            t.name.clone(),
            sqlgate_mysql::new_pool(backend, pool_config(t)),
        );
    }
    Ok(MysqlHooks::new(Users::new(&config.users), pools, engine))
}

fn targets(config: &Config, kind: TargetKind) -> impl Iterator<Item = &Target> {
    config.targets.iter().filter(move |t| t.kind == kind)
}

/// TLS to a target's server. A configuration that does not load is an
/// error, never a connection without TLS.
fn server_tls(t: &Target) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    tls::client_config(&t.tls).with_context(|| format!("target \"{}\"", t.name))
}

/// A target's pool settings (both protocols' pools are the same kind).
fn pool_config(t: &Target) -> sqlgate_net::pool::PoolConfig {
    sqlgate_net::pool::PoolConfig {
        size: t.pool_size,
        acquire_timeout: t.acquire_timeout,
        idle_timeout: t.idle_timeout,
        reset_timeout: Duration::from_secs(5),
        per_user: t.max_per_user,
    }
}
