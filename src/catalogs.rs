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

/// The first retry of a failed read, doubled per failure up to
/// [`RETRY_MAX`]: a read fails when the server is down or refuses the
/// gateway's login, and transiently when DDL drops a view while the query
/// reads its definition.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves catalog requests until cancelled. A failed read is retried
/// with a backoff, never dropped: until it succeeds, statements on masked
/// tables stay refused.
pub async fn read_catalogs(engine: Arc<Engine>, pools: Pools) {
    let mut failures: HashMap<String, u32> = HashMap::new();
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
                    failures.remove(&target);
                    engine.set_catalog(&target, snapshot);
                }
                Err(e) => {
                    let failed = failures.entry(target.clone()).or_default();
                    *failed = failed.saturating_add(1);
                    let delay = retry_delay(*failed);
                    tracing::warn!(target_name = %target, error = %e, retry_in_ms = delay.as_millis() as u64, "reading the catalog failed; statements on masked tables stay refused until it is read");
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        engine.want_catalog(&target);
                    });
                }
            }
        }
    }
}

/// How long to wait after the `failed`-th failure in a row.
fn retry_delay(failed: u32) -> std::time::Duration {
    RETRY_FIRST
        .saturating_mul(1u32 << failed.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

/// Reads one target's catalog on pools of its own (`sqlgate explain`).
pub async fn read_target(
    config: &crate::config::Config,
    target: &str,
) -> anyhow::Result<CatalogSnapshot> {
    let engine = Arc::new(Engine::new(None, 1));
    let pg = crate::pools::pg_hooks(config, engine.clone())?;
    if let Some(pool) = pg.pools().get(target) {
        return read_pg(pool).await;
    }
    match crate::pools::mysql_hooks(config, engine)?.pool(target) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), RETRY_FIRST);
        assert_eq!(retry_delay(2), RETRY_FIRST * 2);
        assert_eq!(retry_delay(8), RETRY_MAX);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }
}
