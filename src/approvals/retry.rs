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

use super::{now_us, shared, Approvals, Ask, Request, RequestView, State, NUMBERS_USED_UP};

/// What a `retry` request matches: the identity, the target, and the
/// statements' fingerprints and literal and bound values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RetryKey {
    /// The requester.
    pub user: String,
    /// The target.
    pub target: String,
    /// Fingerprints and values of the text (and bound parameters).
    pub statement: String,
}

impl RetryKey {
    /// What gateways sharing the store match on: a SHA-256 of the whole
    /// key and of the rule that reviews it (its name, approver groups and
    /// count, so that an approval given under one gateway's rule never
    /// runs under a stricter one elsewhere). The store holds no values in
    /// clear, though a reader who can guess them could confirm a guess.
    pub fn hash(&self, ask: &Ask) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let count = ask.review.approvals.to_string();
        let parts = [&self.user, &self.target, &self.statement, &ask.rule, &count]
            .into_iter()
            .chain(&ask.review.approvers);
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
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
    /// A `retry` statement: claims an approval of the same key (once:
    /// two gateways' sessions, or two of one, cannot both run it), or
    /// names the pending request of it (made now when there is none; it
    /// expires after the rule's `review_timeout` undecided).
    pub fn retry(&self, ask: Ask, key: RetryKey) -> Retry {
        let now = now_us();
        let mut reg = self.registry();
        if let Some(&id) = reg.retries.get(&key) {
            let found = reg
                .requests
                .get(&id)
                .map(|r| (r.view.state.clone(), r.retry.clone()));
            match found {
                Some((State::Approved, Some((_, until)))) if until > now => {
                    reg.retries.remove(&key);
                    if let Some(r) = reg.requests.get_mut(&id) {
                        r.retry = None;
                    }
                    return Retry::Approved(id);
                }
                Some((State::Pending, _)) => return Retry::Pending(id),
                // Denied, expired, used or unused too long: asked again.
                _ => {
                    reg.retries.remove(&key);
                }
            }
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
            return Retry::TooMany;
        }
        let timeout = ask.review.timeout;
        let Some(id) = reg.allocate() else {
            tracing::error!("{NUMBERS_USED_UP}");
            return Retry::TooMany;
        };
        let (tx, _) = watch::channel(State::Pending);
        let retry_key = Some(key.hash(&ask));
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
        Retry::Pending(id)
    }

    /// Whether approvals are shared with other gateways (through the
    /// PostgreSQL store).
    pub fn is_shared(&self) -> bool {
        self.shared.get().is_some()
    }

    /// The store shared with other gateways: `retry` approvals are
    /// claimed there from now on (see [`Approvals::retry_anywhere`]).
    pub fn set_shared(&self, shared: Arc<shared::Shared>) {
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
    ) -> Result<(Retry, Vec<String>), shared::SharedError> {
        let Some(shared) = self.shared.get().cloned() else {
            let retry = self.retry(ask, key);
            let by = match retry {
                Retry::Approved(id) => self.approvers(id),
                _ => Vec::new(),
            };
            return Ok((retry, by));
        };
        let now = now_us();
        // This gateway's own approval of it, or its pending request.
        let own = {
            let reg = self.registry();
            match reg.retries.get(&key).and_then(|id| reg.requests.get(id)) {
                Some(r) if r.view.state == State::Pending => {
                    return Ok((Retry::Pending(r.view.id), Vec::new()))
                }
                Some(r)
                    if matches!(r.retry, Some((_, until)) if until > now)
                        && r.view.state == State::Approved =>
                {
                    Some(r.view.clone())
                }
                _ => None,
            }
        };
        if let Some(view) = own {
            let claiming = shared.clone();
            let claimed_view = view.clone();
            let claimed = claim_in_time(move || claiming.claim_own(&claimed_view)).await?;
            // Used either way: here now, or on another gateway before.
            {
                let mut reg = self.registry();
                reg.retries.remove(&key);
                if let Some(r) = reg.requests.get_mut(&view.id) {
                    r.retry = None;
                }
            }
            if claimed {
                return Ok((
                    Retry::Approved(view.id),
                    view.approvals.iter().map(|a| a.by.clone()).collect(),
                ));
            }
        }
        let hash = key.hash(&ask);
        let claiming = shared.clone();
        let claim = claim_in_time(move || claiming.claim_by_key(&hash)).await?;
        match claim {
            shared::Claim::Approved { id, by } => Ok((Retry::Approved(id), by)),
            shared::Claim::Pending(id) => Ok((Retry::Pending(id), Vec::new())),
            shared::Claim::None => match self.retry(ask.clone(), key.clone()) {
                // Approved here meanwhile: used only once claimed.
                Retry::Approved(id) => {
                    let Some(view) = self.get(id) else {
                        return Ok((self.retry(ask, key), Vec::new()));
                    };
                    let claimed = claim_in_time(move || shared.claim_own(&view)).await?;
                    if claimed {
                        Ok((Retry::Approved(id), self.approvers(id)))
                    } else {
                        Ok((self.retry(ask, key), Vec::new()))
                    }
                }
                other => Ok((other, Vec::new())),
            },
        }
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
    claim: impl FnOnce() -> Result<T, shared::SharedError> + Send + 'static,
) -> Result<T, shared::SharedError> {
    match tokio::time::timeout(CLAIM_WAIT, tokio::task::spawn_blocking(claim)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(shared::SharedError::Store(e.to_string())),
        Err(_) => Err(shared::SharedError::Store(format!(
            "no answer within {}s",
            CLAIM_WAIT.as_secs()
        ))),
    }
}

/// How long a `retry` claim waits for the shared store.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(6);
