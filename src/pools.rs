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
use sqlgate_postgres::{tls, PoolConfig};

use crate::auth::Users;
use crate::config::{Config, TargetKind};
use crate::hooks::{MysqlHooks, PgHooks};
use crate::policy::engine::Engine;

/// The PostgreSQL listener's hooks: the users, a pool per PostgreSQL
/// target, and the policy engine.
pub fn pg_hooks(config: &Config, engine: Arc<Engine>) -> anyhow::Result<PgHooks> {
    let mut pools = HashMap::new();
    for t in config
        .targets
        .iter()
        .filter(|t| t.kind == TargetKind::Postgres)
    {
        let backend = BackendConfig {
            target: t.name.clone(),
            host: t.host.clone(),
            port: t.port,
            database: t.database.clone(),
            user: t.user.clone(),
            password: t.password.clone(),
            tls: tls::client_config(&t.tls).with_context(|| format!("target \"{}\"", t.name))?,
            connect_timeout: t.connect_timeout,
        };
        let pool = sqlgate_postgres::new_pool(
            backend,
            PoolConfig {
                size: t.pool_size,
                acquire_timeout: t.acquire_timeout,
                idle_timeout: t.idle_timeout,
                reset_timeout: Duration::from_secs(5),
                per_user: t.max_per_user,
            },
        );
        pools.insert(t.name.clone(), pool);
    }
    Ok(PgHooks::new(Users::new(&config.users), pools, engine))
}

/// The MySQL listener's hooks.
pub fn mysql_hooks(config: &Config, engine: Arc<Engine>) -> MysqlHooks {
    MysqlHooks::new(Users::new(&config.users), mysql_pools(config), engine)
}

fn mysql_pools(config: &Config) -> HashMap<String, Arc<sqlgate_mysql::Pool>> {
    config
        .targets
        .iter()
        .filter(|t| t.kind == TargetKind::Mysql)
        .map(|t| {
            let backend = sqlgate_mysql::backend::BackendConfig {
                target: t.name.clone(),
                host: t.host.clone(),
                port: t.port,
                database: t.database.clone(),
                user: t.user.clone(),
                password: t.password.clone(),
                tls: tls::client_config(&t.tls).ok().flatten(),
                connect_timeout: t.connect_timeout,
            };
            let pool = sqlgate_mysql::new_pool(
                backend,
                sqlgate_mysql::PoolConfig {
                    size: t.pool_size,
                    acquire_timeout: t.acquire_timeout,
                    idle_timeout: t.idle_timeout,
                    reset_timeout: Duration::from_secs(5),
                    per_user: t.max_per_user,
                },
            );
            (t.name.clone(), pool)
        })
        .collect()
}
