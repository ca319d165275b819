//! Reads the catalogs of targets that masking rules cover, on the
//! targets' own pools, whenever the engine wants one (at start, after DDL,
//! after a policy reload, when a statement names something the snapshot
//! lacks).

use std::collections::HashMap;
use std::sync::Arc;

use crate::policy::engine::Engine;
use crate::policy::mask::catalog::{CatalogSnapshot, MYSQL_CATALOG_QUERY, PG_CATALOG_QUERY};

/// Asks for the catalog of every target a masking rule covers.
pub fn want_masked_targets(engine: &Engine, targets: &[String]) {
    let masks = engine.masks();
    for t in targets {
        if masks.iter().any(|m| m.covers_target(t)) {
            engine.want_catalog(t);
        }
    }
}

/// The pools catalogs are read on.
#[derive(Default)]
pub struct Pools {
    /// PostgreSQL targets.
    pub postgres: HashMap<String, Arc<sqlgate_postgres::Pool>>,
    /// MySQL targets.
    pub mysql: HashMap<String, Arc<sqlgate_mysql::Pool>>,
}

/// Serves catalog requests until cancelled.
pub async fn read_catalogs(engine: Arc<Engine>, pools: Pools) {
    loop {
        for target in engine.wanted_catalogs().await {
            let read = if let Some(pool) = pools.postgres.get(&target) {
                read_pg(pool).await
            } else if let Some(pool) = pools.mysql.get(&target) {
                read_mysql(pool).await
            } else {
                continue;
            };
            match read {
                Ok(snapshot) => {
                    tracing::info!(target_name = %target, "catalog read for masking");
                    engine.set_catalog(&target, snapshot);
                }
                Err(e) => {
                    tracing::warn!(target_name = %target, error = %e, "reading the catalog failed; statements on masked tables stay refused");
                }
            }
        }
    }
}

/// Reads one target's catalog on pools of its own (`sqlgate explain`).
pub async fn read_target(
    config: &crate::config::Config,
    target: &str,
) -> anyhow::Result<CatalogSnapshot> {
    let engine = Arc::new(Engine::new(None, 1));
    let pg = crate::server::pg_hooks(config, engine.clone())?;
    if let Some(pool) = pg.pools().get(target) {
        return read_pg(pool).await;
    }
    match crate::server::mysql_hooks(config, engine).pool(target) {
        Some(pool) => read_mysql(&pool).await,
        None => anyhow::bail!("no target \"{target}\""),
    }
}

async fn read_pg(pool: &Arc<sqlgate_postgres::Pool>) -> anyhow::Result<CatalogSnapshot> {
    let mut lease = pool.acquire(()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = async {
        let (rows, outcome) = lease.conn().query_rows(PG_CATALOG_QUERY).await?;
        if let Some(e) = outcome.error {
            anyhow::bail!("catalog query failed: {e:?}");
        }
        let (path, _) = lease
            .conn()
            .query_rows("SELECT pg_catalog.unnest(pg_catalog.current_schemas(false))")
            .await?;
        let search_path = path
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        Ok(CatalogSnapshot::from_pg_rows(&rows, search_path))
    }
    .await;
    sqlgate_postgres::pool::release(lease, sqlgate_postgres::messages::TX_IDLE, false).await;
    result
}

async fn read_mysql(pool: &Arc<sqlgate_mysql::Pool>) -> anyhow::Result<CatalogSnapshot> {
    let key = sqlgate_mysql::backend::ConnKey {
        caps: 0,
        collation: 45,
    };
    let database = pool.connector().backend().database.clone();
    let mut lease = pool
        .acquire(key)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rows = lease.conn().query_rows(MYSQL_CATALOG_QUERY).await;
    sqlgate_mysql::pool::release(lease).await;
    Ok(CatalogSnapshot::from_mysql_rows(&rows?, &database))
}
