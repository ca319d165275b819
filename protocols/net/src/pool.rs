//! Session pooling: per target at most `size` server connections, each
//! lent to one client session for that session's lifetime.
//!
//! A connection goes back to the pool only through [`Lease::give_back`],
//! which the protocol crate calls after it has reset the connection; a
//! lease that is dropped closes its connection. So a connection in an
//! unknown state is never handed to another client. Idle connections carry
//! the key they were opened with (MySQL: the client's packet-shaping
//! capability flags); a session gets one with its key.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How a protocol opens and checks server connections.
pub trait Connector: Send + Sync + 'static {
    /// An open, authenticated server connection.
    type Conn: Send + 'static;
    /// What a session needs its connection to have been opened with.
    type Key: PartialEq + Copy + Send + Sync + 'static;
    /// Why opening failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The target's name, for errors and logs.
    fn target(&self) -> &str;

    /// Opens and authenticates a connection.
    fn connect(
        &self,
        key: Self::Key,
    ) -> impl Future<Output = Result<Self::Conn, Self::Error>> + Send;

    /// The key a connection was opened with.
    fn key_of(conn: &Self::Conn) -> Self::Key;

    /// False when the server closed the connection or sent something while
    /// it sat idle.
    fn is_alive(conn: &mut Self::Conn) -> bool;
}

/// Pool limits for one target.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most server connections open at once.
    pub size: usize,
    /// How long a session waits for a free connection.
    pub acquire_timeout: Duration,
    /// An idle connection older than this is closed instead of reused.
    pub idle_timeout: Duration,
    /// How long a reset may take before the connection is dropped.
    pub reset_timeout: Duration,
    /// Most connections one gateway user may hold at once (`None`: the
    /// whole pool), so that one identity's idle sessions cannot starve
    /// everyone else.
    pub per_user: Option<usize>,
}

/// Why a session got no server connection.
#[derive(Debug, thiserror::Error)]
pub enum PoolError<E: std::error::Error + 'static> {
    /// Every connection was in use for the whole acquire timeout.
    #[error("all {size} server connections of target \"{target}\" are in use (waited {waited:?})")]
    Exhausted {
        /// The target.
        target: String,
        /// The pool size.
        size: usize,
        /// How long the session waited.
        waited: Duration,
    },
    /// The user holds its whole share of the pool already.
    #[error("user \"{user}\" holds {limit} server connections of target \"{target}\" already, its share of the pool")]
    UserShare {
        /// The target.
        target: String,
        /// The gateway user.
        user: String,
        /// The share.
        limit: usize,
    },
    /// Opening a new connection failed.
    #[error(transparent)]
    Connect(E),
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// The pool of one target.
pub struct Pool<C: Connector> {
    connector: C,
    config: PoolConfig,
    idle: Mutex<Vec<Idle<C::Conn>>>,
    permits: Arc<Semaphore>,
    /// Connections each user holds now.
    held: Arc<Mutex<HashMap<String, usize>>>,
    /// Sessions waiting for a connection now.
    waiting: std::sync::atomic::AtomicUsize,
}

/// A pool's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Its size (most connections lent at once).
    pub size: usize,
    /// Connections lent now.
    pub in_use: usize,
    /// Connections open and idle now.
    pub idle: usize,
    /// Sessions waiting for a connection now.
    pub waiting: usize,
}

impl<C: Connector> std::fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("target", &self.connector.target())
            .field("size", &self.config.size)
            .finish()
    }
}

impl<C: Connector> Pool<C> {
    /// An empty pool; connections open on demand.
    pub fn new(connector: C, config: PoolConfig) -> Arc<Self> {
        Arc::new(Pool {
            permits: Arc::new(Semaphore::new(config.size)),
            idle: Mutex::new(Vec::new()),
            held: Arc::new(Mutex::new(HashMap::new())),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            connector,
            config,
        })
    }

    /// Its state now.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            size: self.config.size,
            in_use: self
                .config
                .size
                .saturating_sub(self.permits.available_permits()),
            idle: self.idle_count(),
            waiting: self.waiting.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// How this pool connects.
    pub fn connector(&self) -> &C {
        &self.connector
    }

    /// Its limits.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Connections open and idle right now.
    pub fn idle_count(&self) -> usize {
        self.lock_idle().len()
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle<C::Conn>>> {
        // push/pop/remove only: a poisoned Vec is still consistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lends a connection opened with `key`: an idle one that is still
    /// alive, or a new one (closing an idle one of another key when the
    /// pool is full).
    pub async fn acquire(self: &Arc<Self>, key: C::Key) -> Result<Lease<C>, PoolError<C::Error>> {
        self.acquire_inner(key, None).await
    }

    /// The same for a session of gateway user `user`, within its share
    /// (`PoolConfig::per_user`): past it, an error at once.
    pub async fn acquire_for(
        self: &Arc<Self>,
        key: C::Key,
        user: &str,
    ) -> Result<Lease<C>, PoolError<C::Error>> {
        let share = UserSlot::take(&self.held, user, self.config.per_user).ok_or_else(|| {
            PoolError::UserShare {
                target: self.connector.target().to_owned(),
                user: user.to_owned(),
                limit: self.config.per_user.unwrap_or(self.config.size),
            }
        })?;
        self.acquire_inner(key, Some(share)).await
    }

    async fn acquire_inner(
        self: &Arc<Self>,
        key: C::Key,
        share: Option<UserSlot>,
    ) -> Result<Lease<C>, PoolError<C::Error>> {
        let started = Instant::now();
        let waiting = Waiting::new(&self.waiting);
        let permit = tokio::time::timeout(
            self.config.acquire_timeout,
            self.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| PoolError::Exhausted {
            target: self.connector.target().to_owned(),
            size: self.config.size,
            waited: started.elapsed(),
        })?
        .expect("the pool never closes its semaphore");
        drop(waiting);
        loop {
            let found = {
                let mut idle = self.lock_idle();
                idle.iter()
                    .rposition(|i| C::key_of(&i.conn) == key)
                    .map(|at| idle.swap_remove(at))
            };
            let Some(mut idle) = found else { break };
            if idle.since.elapsed() < self.config.idle_timeout && C::is_alive(&mut idle.conn) {
                return Ok(self.lease(idle.conn, permit, share));
            }
            tracing::debug!(target_name = %self.connector.target(), "dropping a stale idle server connection");
        }
        // Idle connections of other keys hold no permit but are server
        // connections all the same: keep their number within the size.
        {
            let mut idle = self.lock_idle();
            let busy = self.config.size - self.permits.available_permits();
            if busy + idle.len() > self.config.size && !idle.is_empty() {
                idle.remove(0);
            }
        }
        let conn = self
            .connector
            .connect(key)
            .await
            .map_err(PoolError::Connect)?;
        Ok(self.lease(conn, permit, share))
    }

    fn lease(
        self: &Arc<Self>,
        conn: C::Conn,
        permit: OwnedSemaphorePermit,
        share: Option<UserSlot>,
    ) -> Lease<C> {
        Lease {
            conn,
            _permit: permit,
            _share: share,
            pool: self.clone(),
        }
    }
}

/// One connection of a user's share, counted while it lives.
struct UserSlot {
    held: Arc<Mutex<HashMap<String, usize>>>,
    user: String,
}

impl UserSlot {
    /// A slot of `user`'s share, or `None` when it is used up.
    fn take(
        held: &Arc<Mutex<HashMap<String, usize>>>,
        user: &str,
        limit: Option<usize>,
    ) -> Option<UserSlot> {
        let mut map = held.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(user.to_owned()).or_insert(0);
        if limit.is_some_and(|l| *n >= l) {
            return None;
        }
        *n += 1;
        Some(UserSlot {
            held: held.clone(),
            user: user.to_owned(),
        })
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut map = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.user);
            }
        }
    }
}

/// A server connection lent to one session.
pub struct Lease<C: Connector> {
    conn: C::Conn,
    _permit: OwnedSemaphorePermit,
    _share: Option<UserSlot>,
    pool: Arc<Pool<C>>,
}

impl<C: Connector> std::fmt::Debug for Lease<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("pool", &self.pool).finish()
    }
}

impl<C: Connector> Lease<C> {
    /// The connection.
    pub fn conn(&mut self) -> &mut C::Conn {
        &mut self.conn
    }

    /// The connection, read-only.
    pub fn conn_ref(&self) -> &C::Conn {
        &self.conn
    }

    /// The pool it came from.
    pub fn pool(&self) -> &Arc<Pool<C>> {
        &self.pool
    }

    /// Returns a connection the caller has just reset to the pool.
    pub fn give_back(self) {
        let Lease { conn, pool, .. } = self;
        pool.lock_idle().push(Idle {
            conn,
            since: Instant::now(),
        });
    }
}

/// Counts a session as waiting for a connection while it lives (dropped
/// when the permit comes, or when the wait ends otherwise).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Connections are numbers; a connection is alive while `alive` says so.
    struct Counter {
        opened: AtomicU32,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    struct Never;

    struct Conn {
        id: u32,
        key: u8,
        alive: bool,
    }

    impl Connector for Counter {
        type Conn = Conn;
        type Key = u8;
        type Error = Never;
        fn target(&self) -> &str {
            "t"
        }
        async fn connect(&self, key: u8) -> Result<Conn, Never> {
            let id = self.opened.fetch_add(1, Ordering::Relaxed);
            Ok(Conn {
                id,
                key,
                alive: true,
            })
        }
        fn key_of(conn: &Conn) -> u8 {
            conn.key
        }
        fn is_alive(conn: &mut Conn) -> bool {
            conn.alive
        }
    }

    fn pool(size: usize) -> Arc<Pool<Counter>> {
        Pool::new(
            Counter {
                opened: AtomicU32::new(0),
            },
            PoolConfig {
                size,
                acquire_timeout: Duration::from_millis(50),
                idle_timeout: Duration::from_secs(60),
                reset_timeout: Duration::from_secs(1),
                per_user: None,
            },
        )
    }

    #[tokio::test]
    async fn stats_count_lent_idle_and_waiting() {
        let p = pool(1);
        let lent = p.acquire(1).await.unwrap();
        assert_eq!(
            p.stats(),
            PoolStats {
                size: 1,
                in_use: 1,
                idle: 0,
                waiting: 0
            }
        );
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.acquire(1).await.map(|_| ()) }
        });
        // The waiter registers before it waits: poll until it has.
        while p.stats().waiting == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(p.stats().waiting, 1);
        drop(lent);
        waiter.await.unwrap().unwrap();
        assert_eq!(p.stats().waiting, 0);
        assert_eq!(p.stats().in_use, 0);
    }

    #[tokio::test]
    async fn given_back_connections_are_reused_by_key_dropped_ones_are_not() {
        let p = pool(2);
        let a = p.acquire(1).await.unwrap();
        assert_eq!(a.conn_ref().id, 0);
        a.give_back();
        assert_eq!(p.acquire(1).await.unwrap().conn_ref().id, 0, "reused");
        // The lease above was dropped, not given back: its connection is gone.
        assert_eq!(p.idle_count(), 0);
        let mut b = p.acquire(1).await.unwrap();
        assert_eq!(b.conn_ref().id, 1);
        b.conn().alive = false;
        b.give_back();
        assert_eq!(
            p.acquire(1).await.unwrap().conn_ref().id,
            2,
            "a dead idle connection is not handed out"
        );
        let c = p.acquire(1).await.unwrap();
        c.give_back();
        assert_eq!(
            p.acquire(2).await.unwrap().conn_ref().key,
            2,
            "another key gets its own connection"
        );
    }

    #[tokio::test]
    async fn a_user_holds_at_most_its_share_and_gets_it_back() {
        let mut p = pool(3);
        Arc::get_mut(&mut p).unwrap().config.per_user = Some(2);
        let a = p.acquire_for(0, "bot").await.unwrap();
        let b = p.acquire_for(0, "bot").await.unwrap();
        match p.acquire_for(0, "bot").await {
            Err(PoolError::UserShare { user, limit, .. }) => {
                assert_eq!((user.as_str(), limit), ("bot", 2))
            }
            other => panic!("{other:?}"),
        }
        let other = p.acquire_for(0, "ci").await.unwrap();
        // A lease given back or dropped returns its slot.
        a.give_back();
        let c = p.acquire_for(0, "bot").await.unwrap();
        drop(b);
        let d = p.acquire_for(0, "bot").await.unwrap();
        assert!(matches!(
            p.acquire_for(0, "bot").await,
            Err(PoolError::UserShare { .. })
        ));
        drop((c, d, other));
        assert!(p.held.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_exhausted_pool_answers_after_the_timeout() {
        let p = pool(1);
        let held = p.acquire(0).await.unwrap();
        match p.acquire(0).await {
            Err(PoolError::Exhausted {
                size: 1, waited, ..
            }) => assert!(waited >= Duration::from_millis(50)),
            other => panic!("expected exhaustion, got {:?}", other.map(|_| ())),
        }
        drop(held);
        assert!(
            p.acquire(0).await.is_ok(),
            "the permit came back with the dropped lease"
        );
    }
}
