//! The shared store: PostgreSQL, for several gateway instances writing
//! one trail (`[store] url`). Each instance's writer appends its own
//! sessions' records; the gateway-wide chain of session links is extended
//! under a transaction-scoped advisory lock, so links from every instance
//! form one chain whatever order their commits arrive in. The schema
//! (`sqlgate_audit`) is created and migrated at start.
//!
//! This module must never append a link without holding the lock in the
//! same transaction, nor take a password from the URL (only from the
//! file the configuration names), nor fall back to plain text when TLS
//! is configured (`[store] tls`, checked as for targets).

use postgres::{Client, NoTls, Transaction};

use super::checkpoint::{Anchor, Checkpoint};
use super::{Kind, Link, Row, SessionSummary, Store, StoreError};

/// The advisory lock every chain-extending transaction takes.
const CHAIN_LOCK: i64 = 0x0053_514c_4741_5445; // "SQLGATE"

/// The schema's version this gateway writes.
const VERSION: i32 = 1;

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS sqlgate_audit;
CREATE TABLE IF NOT EXISTS sqlgate_audit.version (version int NOT NULL);
CREATE TABLE IF NOT EXISTS sqlgate_audit.records (
    session text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    at_us bigint NOT NULL,
    body text NOT NULL,
    prev bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (session, seq)
);
CREATE TABLE IF NOT EXISTS sqlgate_audit.links (
    n bigint PRIMARY KEY,
    session text NOT NULL,
    records bigint NOT NULL,
    head bytea NOT NULL,
    prev bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS sqlgate_audit.sessions (
    id text PRIMARY KEY,
    user_name text NOT NULL,
    target text NOT NULL,
    started_us bigint NOT NULL,
    ended_us bigint,
    statements bigint NOT NULL DEFAULT 0,
    refused bigint NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_started ON sqlgate_audit.sessions (started_us);
CREATE TABLE IF NOT EXISTS sqlgate_audit.anchor (
    id int PRIMARY KEY CHECK (id = 1),
    link bigint NOT NULL,
    hash bytea NOT NULL,
    cutoff_us bigint NOT NULL,
    signature bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS sqlgate_audit.checkpoints (
    n bigint PRIMARY KEY,
    link bigint NOT NULL,
    link_hash bytea NOT NULL,
    at_us bigint NOT NULL,
    signature bytea NOT NULL
);
";

/// A client of the store (TLS required when configured: the store never
/// falls back to plain text).
pub(super) fn connect(
    config: &postgres::Config,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<Client, StoreError> {
    match tls {
        Some(tls) => {
            let mut config = config.clone();
            config.ssl_mode(postgres::config::SslMode::Require);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
            config.connect(tls).map_err(err)
        }
        None => config.connect(NoTls).map_err(err),
    }
}

/// A PostgreSQL database holding the trail.
pub struct PostgresStore {
    client: Client,
}

fn err(e: postgres::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn hash32(v: Vec<u8>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if v.len() == 32 {
        out.copy_from_slice(&v);
    }
    out
}

impl PostgresStore {
    /// Connects with `config` (its password from the configuration's
    /// file) and creates or migrates the schema.
    pub fn connect(
        config: &postgres::Config,
        tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Result<Self, StoreError> {
        let mut client = connect(config, tls)?;
        let mut tx = client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
            .map_err(err)?;
        tx.batch_execute(SCHEMA).map_err(err)?;
        let version: Option<i32> = tx
            .query_opt("SELECT max(version) FROM sqlgate_audit.version", &[])
            .map_err(err)?
            .and_then(|r| r.get(0));
        match version {
            None => {
                tx.execute("INSERT INTO sqlgate_audit.version VALUES ($1)", &[&VERSION])
                    .map_err(err)?;
            }
            Some(v) if v > VERSION => {
                return Err(StoreError::Backend(format!(
                    "the store's schema is version {v}, newer than this gateway's ({VERSION}): upgrade the gateway"
                )))
            }
            Some(_) => {}
        }
        tx.commit().map_err(err)?;
        Ok(PostgresStore { client })
    }
}

fn link_of(r: &postgres::Row) -> Link {
    Link {
        n: r.get::<_, i64>(0) as u64,
        session: r.get(1),
        records: r.get::<_, i64>(2) as u64,
        head: hash32(r.get(3)),
        prev: hash32(r.get(4)),
        hash: hash32(r.get(5)),
    }
}

fn last_link(tx: &mut Transaction<'_>) -> Result<Option<Link>, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT n, session, records, head, prev, hash FROM sqlgate_audit.links ORDER BY n DESC LIMIT 1",
            &[],
        )
        .map_err(err)?
        .map(|r| link_of(&r)))
}

impl Store for PostgresStore {
    fn append(
        &mut self,
        rows: &[Row],
        links: &mut [Link],
        counts: &[(String, u64, u64)],
    ) -> Result<Option<Link>, StoreError> {
        let mut tx = self.client.transaction().map_err(err)?;
        let insert = tx
            .prepare(
                "INSERT INTO sqlgate_audit.records (session, seq, kind, at_us, body, prev, hash) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::bytea[])",
            )
            .map_err(err)?;
        let (mut sessions, mut seqs, mut kinds, mut ats, mut bodies, mut prevs, mut hashes) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        for r in rows {
            sessions.push(r.session.as_str());
            seqs.push(r.seq as i64);
            kinds.push(r.kind.as_str());
            ats.push(r.at_us);
            bodies.push(r.body.as_str());
            prevs.push(&r.prev[..]);
            hashes.push(&r.hash[..]);
        }
        tx.execute(
            &insert,
            &[&sessions, &seqs, &kinds, &ats, &bodies, &prevs, &hashes],
        )
        .map_err(err)?;
        for r in rows {
            match r.kind {
                Kind::SessionStart => {
                    let s: super::SessionStart = serde_json::from_str(&r.body)
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                    tx.execute(
                        "INSERT INTO sqlgate_audit.sessions (id, user_name, target, started_us) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        &[&r.session, &s.user, &s.target, &r.at_us],
                    )
                    .map_err(err)?;
                }
                Kind::SessionEnd => {
                    tx.execute(
                        "UPDATE sqlgate_audit.sessions SET ended_us = $2 WHERE id = $1",
                        &[&r.session, &r.at_us],
                    )
                    .map_err(err)?;
                }
                Kind::Statement
                | Kind::Outcome
                | Kind::Connected
                | Kind::Approval
                | Kind::Definition
                | Kind::Events => {}
            }
        }
        for (session, statements, refused) in counts {
            tx.execute(
                "UPDATE sqlgate_audit.sessions SET statements = statements + $2, refused = refused + $3 WHERE id = $1",
                &[session, &(*statements as i64), &(*refused as i64)],
            )
            .map_err(err)?;
        }
        let mut last = None;
        if !links.is_empty() {
            // One chain for every instance: extended under the lock, after
            // the last link as this transaction sees it.
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
                .map_err(err)?;
            let after = match last_link(&mut tx)? {
                Some(l) => Some(l),
                // Pruned whole: the chain goes on from its anchor.
                None => {
                    tx.query_opt(
                        "SELECT link, hash FROM sqlgate_audit.anchor WHERE id = 1",
                        &[],
                    )
                    .map_err(err)?
                    .map(|r| super::chain::anchor_link(r.get::<_, i64>(0) as u64, hash32(r.get(1))))
                }
            };
            last = super::chain::rechain(links, after);
            for l in links.iter() {
                tx.execute(
                    "INSERT INTO sqlgate_audit.links (n, session, records, head, prev, hash) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &(l.n as i64),
                        &l.session,
                        &(l.records as i64),
                        &&l.head[..],
                        &&l.prev[..],
                        &&l.hash[..],
                    ],
                )
                .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(last)
    }

    fn last_link(&mut self) -> Result<Option<Link>, StoreError> {
        let mut tx = self.client.transaction().map_err(err)?;
        let last = last_link(&mut tx)?;
        tx.commit().map_err(err)?;
        Ok(last)
    }

    fn sessions(&mut self) -> Result<Vec<SessionSummary>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT id, user_name, target, started_us, ended_us, statements, refused \
                 FROM sqlgate_audit.sessions ORDER BY started_us DESC",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(|r| SessionSummary {
                id: r.get(0),
                user: r.get(1),
                target: r.get(2),
                started_us: r.get(3),
                ended_us: r.get(4),
                statements: r.get::<_, i64>(5) as u64,
                refused: r.get::<_, i64>(6) as u64,
            })
            .collect())
    }

    fn rows(&mut self, session: &str) -> Result<Vec<Row>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT session, seq, kind, at_us, body, prev, hash FROM sqlgate_audit.records \
                 WHERE session = $1 ORDER BY seq",
                &[&session],
            )
            .map_err(err)?
            .iter()
            .map(|r| {
                let (kind, body) = Kind::read(r.get(2), r.get(4));
                Row {
                    session: r.get(0),
                    seq: r.get::<_, i64>(1) as u64,
                    kind,
                    at_us: r.get(3),
                    body,
                    prev: hash32(r.get(5)),
                    hash: hash32(r.get(6)),
                }
            })
            .collect())
    }

    fn record_count(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self
            .client
            .query_one("SELECT count(*) FROM sqlgate_audit.records", &[])
            .map_err(err)?
            .get(0);
        Ok(n as u64)
    }

    fn session_ids(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT DISTINCT session FROM sqlgate_audit.records ORDER BY session",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn begin_snapshot(&mut self) -> Result<(), StoreError> {
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(err)
    }

    fn end_snapshot(&mut self) -> Result<(), StoreError> {
        self.client.batch_execute("COMMIT").map_err(|e| {
            let _ = self.client.batch_execute("ROLLBACK");
            err(e)
        })
    }

    fn links(&mut self) -> Result<Vec<Link>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT n, session, records, head, prev, hash FROM sqlgate_audit.links ORDER BY n",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(link_of)
            .collect())
    }

    fn add_checkpoint(
        &mut self,
        sign: &dyn Fn(u64) -> Checkpoint,
    ) -> Result<Checkpoint, StoreError> {
        let mut tx = self.client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
            .map_err(err)?;
        let n: Option<i64> = tx
            .query_one("SELECT max(n) FROM sqlgate_audit.checkpoints", &[])
            .map_err(err)?
            .get(0);
        let cp = sign(n.map_or(0, |n| n as u64 + 1));
        tx.execute(
            "INSERT INTO sqlgate_audit.checkpoints (n, link, link_hash, at_us, signature) VALUES ($1, $2, $3, $4, $5)",
            &[
                &(cp.n as i64),
                &(cp.link as i64),
                &&cp.link_hash[..],
                &cp.at_us,
                &cp.signature,
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(cp)
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT n, link, link_hash, at_us, signature FROM sqlgate_audit.checkpoints ORDER BY n",
                &[],
            )
            .map_err(err)?
            .iter()
            .map(|r| Checkpoint {
                n: r.get::<_, i64>(0) as u64,
                link: r.get::<_, i64>(1) as u64,
                link_hash: hash32(r.get(2)),
                at_us: r.get(3),
                signature: r.get(4),
            })
            .collect())
    }

    // When a session ended is read from its own (hashed) end record.
    fn prunable(&mut self, cutoff_us: i64) -> Result<Option<Link>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT l.n, l.session, l.records, l.head, l.prev, l.hash, r.at_us \
                 FROM sqlgate_audit.links l LEFT JOIN sqlgate_audit.records r \
                 ON r.session = l.session AND r.kind = 'session_end' AND r.hash = l.head \
                 ORDER BY l.n",
                &[],
            )
            .map_err(err)?;
        let mut last = None;
        for r in &rows {
            let ended: Option<i64> = r.get(6);
            if ended.is_none_or(|e| e >= cutoff_us) {
                break;
            }
            last = Some(link_of(r));
        }
        Ok(last)
    }

    fn prune(&mut self, anchor: &Anchor) -> Result<(), StoreError> {
        let mut tx = self.client.transaction().map_err(err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHAIN_LOCK])
            .map_err(err)?;
        let through = anchor.link as i64;
        for sql in [
            "DELETE FROM sqlgate_audit.records WHERE session IN (SELECT session FROM sqlgate_audit.links WHERE n <= $1)",
            "DELETE FROM sqlgate_audit.sessions WHERE id IN (SELECT session FROM sqlgate_audit.links WHERE n <= $1)",
            "DELETE FROM sqlgate_audit.links WHERE n <= $1",
            "DELETE FROM sqlgate_audit.checkpoints WHERE link <= $1",
        ] {
            tx.execute(sql, &[&through]).map_err(err)?;
        }
        tx.execute(
            "INSERT INTO sqlgate_audit.anchor (id, link, hash, cutoff_us, signature) VALUES (1, $1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET link = excluded.link, hash = excluded.hash, \
             cutoff_us = excluded.cutoff_us, signature = excluded.signature \
             WHERE sqlgate_audit.anchor.link < excluded.link",
            &[&through, &&anchor.hash[..], &anchor.cutoff_us, &anchor.signature],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    fn anchor(&mut self) -> Result<Option<Anchor>, StoreError> {
        Ok(self
            .client
            .query_opt(
                "SELECT link, hash, cutoff_us, signature FROM sqlgate_audit.anchor WHERE id = 1",
                &[],
            )
            .map_err(err)?
            .map(|r| Anchor {
                link: r.get::<_, i64>(0) as u64,
                hash: hash32(r.get(1)),
                cutoff_us: r.get(2),
                signature: r.get(3),
            }))
    }
}
