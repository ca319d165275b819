//! `review_mode = "retry"` in the registry: a reviewed statement is
//! refused at once naming its request; once approved, the same key (who,
//! where, what with its values) claims the approval, once. Where gateways
//! share the store, the claim is made there (`shared.rs`), so an approval
//! runs once whichever gateway the statement is sent again through.
//!
//! This module must never hand out an approval twice, nor one of another
//! key, nor one it did not claim in the shared store when there is one.

use std::sync::Arc;

use tokio::sync::watch;

use super::{now_us, Approvals, Ask, Request, RequestView, State, NUMBERS_USED_UP};

/// What a `retry` request matches: the identity, the target, the
/// statements' fingerprints and literal and bound values, and the rule
/// that reviews them (so that an approval given under a rule never runs
/// under a stricter one: after a reload, or on another gateway).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RetryKey {
    /// The requester.
    pub user: String,
    /// The target.
    pub target: String,
    /// Fingerprints and values of the text (and bound parameters).
    pub statement: String,
    /// The reviewing rule: its name, approver groups and count.
    pub rule: String,
}

impl RetryKey {
    /// The rule part of a key: what a request's approval depends on.
    pub fn rule_of(ask: &Ask) -> String {
        format!(
            "{}|{}|{}",
            ask.rule,
            ask.review.approvals,
            ask.review.approvers.join(",")
        )
    }

    /// What gateways sharing the store match on: a SHA-256 of the whole
    /// key. The store holds no values in clear, though a reader who can
    /// guess them could confirm a guess.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for part in [&self.user, &self.target, &self.statement, &self.rule] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// Where `retry` approvals are claimed when several gateways share them
/// (the PostgreSQL store: `shared::Shared`).
pub trait Claims: Send + Sync {
    /// Claims this gateway's approved request `view` for one run: whether
    /// no gateway claimed it before.
    fn claim_own(&self, view: &RequestView) -> Result<bool, ClaimError>;
    /// Claims an approved, unused request of the retry key `hash` held by
    /// any gateway; else names a pending one of it.
    fn claim_by_key(&self, hash: &str) -> Result<Claim, ClaimError>;
}

/// Why a claim could not be made (the store said no, is unreachable, or
/// did not answer in time).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("approvals store: {0}")]
pub struct ClaimError(pub String);

/// What a claim by key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// An approved request, claimed now for one run, and who approved it.
    Approved {
        /// Its number.
        id: u64,
        /// Its approvers.
        by: Vec<String>,
    },
    /// A request of it waits for its decision (on a gateway that runs).
    Pending(u64),
    /// Neither.
    None,
}

/// What this gateway's registry holds of a key.
enum Local {
    /// An approval of it, valid and not yet used (not consumed here).
    Approved(Box<RequestView>),
    /// A request of it waits for its decision.
    Pending(u64),
    /// Nothing (or nothing that counts any more).
    None,
}

/// What a `retry` statement meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// An approval of it: claimed (single use), it runs now.
    Approved(u64),
    /// A request of it, pending (made now or before): it must not run.
    Pending(u64),
    /// No request was made: the identity has too many pending already.
    TooMany,
}

/// Pending `retry` requests one identity may have, and all together.
const MAX_PENDING_RETRIES_PER_USER: usize = 16;
const MAX_PENDING_RETRIES: usize = 1024;

impl Approvals {
    /// A `retry` statement on a gateway that shares nothing: claims an
    /// approval of the same key (once: two sessions cannot both run it),
    /// or names the pending request of it (made now when there is none;
    /// it expires after the rule's `review_timeout` undecided).
    pub fn retry(&self, ask: Ask, key: RetryKey) -> Retry {
        // Another session may use or make what is found meanwhile: looked
        // at again, a few times at most.
        for _ in 0..4 {
            match self.local(&key) {
                Local::Approved(view) => {
                    if self.consume(&key, view.id) {
                        return Retry::Approved(view.id);
                    }
                }
                Local::Pending(id) => return Retry::Pending(id),
                Local::None => {
                    if let Some(r) = self.make_retry(ask.clone(), key.clone()) {
                        return r;
                    }
                }
            }
        }
        Retry::TooMany
    }

    /// What the registry holds of `key` now (stale entries are dropped).
    fn local(&self, key: &RetryKey) -> Local {
        let now = now_us();
        let mut reg = self.registry();
        let Some(&id) = reg.retries.get(key) else {
            return Local::None;
        };
        match reg.requests.get(&id) {
            Some(r) if r.view.state == State::Pending => Local::Pending(id),
            Some(r)
                if r.view.state == State::Approved
                    && matches!(r.retry, Some((_, until)) if until > now) =>
            {
                Local::Approved(Box::new(r.view.clone()))
            }
            // Denied, expired, used or unused too long: asked again.
            _ => {
                reg.retries.remove(key);
                Local::None
            }
        }
    }

    /// Uses this gateway's approval `id` of `key`: whether it was still
    /// unused (exactly one caller gets `true`).
    fn consume(&self, key: &RetryKey, id: u64) -> bool {
        let mut reg = self.registry();
        if reg.retries.get(key) != Some(&id) {
            return false;
        }
        reg.retries.remove(key);
        if let Some(r) = reg.requests.get_mut(&id) {
            r.retry = None;
        }
        true
    }

    /// Makes the pending request of `key`, unless the registry holds one
    /// (or an approval) of it by now (`None`: look again).
    fn make_retry(&self, ask: Ask, key: RetryKey) -> Option<Retry> {
        let now = now_us();
        let mut reg = self.registry();
        if reg.retries.contains_key(&key) {
            return None;
        }
        // Bounded: every distinct statement would be a request (and a
        // timer) of its own.
        let pending: Vec<&RetryKey> = reg
            .requests
            .values()
            .filter(|r| r.view.state == State::Pending)
            .filter_map(|r| r.retry.as_ref().map(|(k, _)| k))
            .collect();
        if pending.len() >= MAX_PENDING_RETRIES
            || pending.iter().filter(|k| k.user == key.user).count() >= MAX_PENDING_RETRIES_PER_USER
        {
            return Some(Retry::TooMany);
        }
        let timeout = ask.review.timeout;
        let Some(id) = reg.allocate() else {
            tracing::error!("{NUMBERS_USED_UP}");
            return Some(Retry::TooMany);
        };
        let (tx, _) = watch::channel(State::Pending);
        let retry_key = Some(key.hash());
        let view = RequestView {
            id,
            ask,
            state: State::Pending,
            approvals: Vec::new(),
            created_us: now,
            expires_us: now + timeout.as_micros() as i64,
            retry_key,
        };
        reg.requests.insert(
            id,
            Request {
                view,
                state: tx,
                retry: Some((key.clone(), 0)),
            },
        );
        reg.retries.insert(key, id);
        self.announce(reg, id);
        // Nobody waits on it: a timer expires it.
        let me = self.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                me.end(id, State::Expired);
            });
        }
        Some(Retry::Pending(id))
    }

    /// Whether approvals are shared with other gateways (through the
    /// PostgreSQL store).
    pub fn is_shared(&self) -> bool {
        self.shared.get().is_some()
    }

    /// The store shared with other gateways: `retry` approvals are
    /// claimed there from now on (see [`Approvals::retry_anywhere`]).
    pub fn set_shared(&self, shared: Arc<dyn Claims>) {
        let _ = self.shared.set(shared);
    }

    /// A `retry` statement, where approvals may be shared by several
    /// gateways: as [`Approvals::retry`], but an approval is used by
    /// claiming it in the shared store (so that no two gateways run it),
    /// and one asked and approved on another gateway counts. Without a
    /// shared store it is [`Approvals::retry`]. A store that cannot be
    /// reached fails it: an approval is never used unclaimed.
    pub async fn retry_anywhere(
        &self,
        ask: Ask,
        key: RetryKey,
    ) -> Result<(Retry, Vec<String>), ClaimError> {
        let Some(shared) = self.shared.get().cloned() else {
            let retry = self.retry(ask, key);
            let by = match retry {
                Retry::Approved(id) => self.approvers(id),
                _ => Vec::new(),
            };
            return Ok((retry, by));
        };
        let hash = key.hash();
        let by_key = || {
            let (shared, hash) = (shared.clone(), hash.clone());
            claim_in_time(move || shared.claim_by_key(&hash))
        };
        // Another session may use or make what is found meanwhile: looked
        // at again, a few times at most.
        for _ in 0..4 {
            match self.local(&key) {
                // This gateway's approval: used once claimed in the store
                // (and kept unused when the store cannot be asked).
                Local::Approved(view) => {
                    let (claiming, claimed_view) = (shared.clone(), (*view).clone());
                    let claimed = claim_in_time(move || claiming.claim_own(&claimed_view)).await?;
                    // Used either way: here now, or on another gateway
                    // (the store lets one claim win).
                    self.consume(&key, view.id);
                    if claimed {
                        return Ok((
                            Retry::Approved(view.id),
                            view.approvals.iter().map(|a| a.by.clone()).collect(),
                        ));
                    }
                }
                // Its request waits here; an approval of it given on
                // another gateway counts first (and ends this request).
                Local::Pending(id) => {
                    return Ok(match by_key().await? {
                        Claim::Approved { id: other, by } => {
                            self.end(
                                id,
                                State::Withdrawn {
                                    why: format!("approved as request #{other} on another gateway"),
                                },
                            );
                            (Retry::Approved(other), by)
                        }
                        _ => (Retry::Pending(id), Vec::new()),
                    });
                }
                Local::None => match by_key().await? {
                    Claim::Approved { id, by } => return Ok((Retry::Approved(id), by)),
                    Claim::Pending(id) => return Ok((Retry::Pending(id), Vec::new())),
                    Claim::None => {
                        if let Some(r) = self.make_retry(ask.clone(), key.clone()) {
                            return Ok((r, Vec::new()));
                        }
                    }
                },
            }
        }
        Ok((Retry::TooMany, Vec::new()))
    }

    /// Who approved request `id`.
    fn approvers(&self, id: u64) -> Vec<String> {
        self.get(id)
            .map(|v| v.approvals.iter().map(|a| a.by.clone()).collect())
            .unwrap_or_default()
    }
}

/// Runs a claim in the shared store off the async workers, bounded in
/// time: a store that does not answer (a silent network) refuses the
/// statement rather than stall it.
async fn claim_in_time<T: Send + 'static>(
    claim: impl FnOnce() -> Result<T, ClaimError> + Send + 'static,
) -> Result<T, ClaimError> {
    match tokio::time::timeout(CLAIM_WAIT, tokio::task::spawn_blocking(claim)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(ClaimError(e.to_string())),
        Err(_) => Err(ClaimError(format!(
            "no answer within {}s",
            CLAIM_WAIT.as_secs()
        ))),
    }
}

/// How long a `retry` claim waits for the shared store.
/// (Longer than the store's own limits, a 5 s connect and a 5 s
/// statement, so that a claim's outcome is nearly always seen.)
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(12);
