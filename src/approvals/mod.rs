//! Just-in-time approval: a statement a rule reviews is held on its own
//! connection while people of the rule's approver groups approve or deny
//! it; approved, it runs as sent; denied, timed out or withdrawn (the
//! client left), it never runs.
//!
//! Why a registry of its own: the relay only awaits a future, the admin
//! plane only calls [`Approvals::approve`] / [`Approvals::deny`]; the
//! rules of who may decide live here, in one place, for every way in.
//!
//! This module must never let a held statement run without the number of
//! distinct approvals its rule asks for, count the requester's own
//! approval, or let a decided request change its decision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

pub mod blast;
pub mod cli;
pub mod hold;
pub mod key;
pub mod notify;
mod retry;
pub mod settings;
pub mod shared;

pub use retry::{Claim, ClaimError, Claims, Retry, RetryKey};

pub use settings::ReviewSettings;

/// Decided requests kept for `list` and `show`, at most (the recording
/// keeps every one).
const KEEP_DECIDED: usize = 1_000;

/// Who asks or decides: a gateway identity and its groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Identity {
    /// The user name.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
}

/// One statement of a held text, as the approver sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldStatement {
    /// The statement as the client sent it (credentials scrubbed).
    pub text: String,
    /// Its risk tags.
    pub tags: Vec<String>,
    /// Its fingerprint (`policy::fingerprint`: literals out), what the
    /// recording groups it by.
    pub fingerprint: String,
    /// Whether a rule reviews it (the others of the text wait with it).
    pub reviewed: bool,
    /// An execution's bound parameter values (`None`: NULL), unless they
    /// may carry a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Vec<Option<String>>>,
    /// Values were bound but are not shown: the text may bind a secret
    /// (a key, a password, a token).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub parameters_withheld: bool,
    /// How far it reaches (the planner's row estimate of an UPDATE or
    /// DELETE), once asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<String>,
}

/// What a request asks to run, and for whom.
#[derive(Debug, Clone, Serialize)]
pub struct Ask {
    /// Who sent it.
    pub requester: Identity,
    /// The target it would run on.
    pub target: String,
    /// The session (its recording id, or the gateway's session id).
    pub session: String,
    /// The client's address.
    pub client: String,
    /// The client's application name, when it sent one.
    pub application: Option<String>,
    /// Every statement of the text (a text is held whole).
    pub statements: Vec<HeldStatement>,
    /// The rule that reviews it (`[defaults]` when none named the tag).
    pub rule: String,
    /// What its approval takes.
    pub review: ReviewSettings,
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// Waiting for decisions.
    Pending,
    /// Approved by enough people: it runs.
    Approved,
    /// Denied: it never runs.
    Denied {
        /// Who denied it.
        by: String,
        /// Why.
        reason: String,
    },
    /// Nobody decided in time: it never runs.
    Expired,
    /// The client left or cancelled while it was held: it never runs.
    Withdrawn {
        /// What withdrew it.
        why: String,
    },
}

impl State {
    /// The state's name (`pending`, `approved`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied { .. } => "denied",
            State::Expired => "expired",
            State::Withdrawn { .. } => "withdrawn",
        }
    }
}

/// One approval given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Who approved.
    pub by: String,
    /// Why, when they said.
    pub reason: Option<String>,
    /// When, in microseconds since the Unix epoch.
    pub at_us: i64,
}

/// A request as `list` and `show` give it.
#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    /// Its number.
    pub id: u64,
    /// What it asks.
    #[serde(flatten)]
    pub ask: Ask,
    /// Where it stands.
    pub state: State,
    /// Approvals so far.
    pub approvals: Vec<Approval>,
    /// When it was made, in microseconds since the Unix epoch.
    pub created_us: i64,
    /// When it expires if undecided.
    pub expires_us: i64,
    /// `retry` mode: the hash of what it matches ([`RetryKey::hash`]),
    /// for gateways sharing the store; never shown.
    #[serde(skip)]
    pub retry_key: Option<String>,
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// No such request.
    #[error("no approval request #{0}")]
    NotFound(u64),
    /// It was decided already.
    #[error("request #{id} is {state} already")]
    Decided {
        /// The request.
        id: u64,
        /// Its state.
        state: &'static str,
    },
    /// Four eyes: a requester never approves (or denies) their own request.
    #[error("{0} made request #{1} and cannot decide it (four eyes)")]
    OwnRequest(String, u64),
    /// The decider is in none of the rule's approver groups.
    #[error("{user} is not an approver of request #{id} (approvers: {approvers})")]
    NotAnApprover {
        /// Who tried.
        user: String,
        /// The request.
        id: u64,
        /// The groups that may decide.
        approvers: String,
    },
    /// They approved it already (approvals count distinct people).
    #[error("{0} approved request #{1} already")]
    AlreadyApproved(String, u64),
    /// A denial needs a reason.
    #[error("a reason is required to deny")]
    ReasonRequired,
}

struct Request {
    view: RequestView,
    state: watch::Sender<State>,
    /// `retry` mode: its key, and until when an approval waits for the
    /// retry (µs since the epoch; set when approved).
    retry: Option<(RetryKey, i64)>,
}

/// Where a request's changes go (see [`Approvals::set_publisher`]).
pub type Publisher = Box<dyn Fn(&RequestView) + Send + Sync>;

/// Every request of this gateway; cheap to clone.
#[derive(Clone)]
pub struct Approvals {
    inner: Arc<Mutex<Registry>>,
    /// The store shared with other gateways, once joined: `retry`
    /// approvals are claimed there.
    shared: Arc<std::sync::OnceLock<Arc<dyn retry::Claims>>>,
    /// Where each change of a request is published (the store shared by
    /// several gateways), once set.
    publisher: Arc<std::sync::OnceLock<Publisher>>,
    /// How long requests waited for their end, in seconds (for metrics).
    wait: prometheus_client::metrics::histogram::Histogram,
    /// Webhooks told of each request made and ended.
    notifier: Option<notify::Notifier>,
}

impl Default for Approvals {
    fn default() -> Self {
        Approvals {
            inner: Arc::default(),
            shared: Arc::default(),
            publisher: Arc::default(),
            wait: prometheus_client::metrics::histogram::Histogram::new([
                1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
            notifier: None,
        }
    }
}

/// Requests by how they ended, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pending now.
    pub pending: u64,
    /// Approved (and so run).
    pub approved: u64,
    /// Denied.
    pub denied: u64,
    /// Expired undecided.
    pub expired: u64,
    /// Withdrawn (the client left or cancelled, the gateway stopped).
    pub withdrawn: u64,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Registry {
    next: u64,
    /// The last number this gateway may give (0: no limit).
    limit: u64,
    requests: BTreeMap<u64, Request>,
    /// `retry` mode: what each request would run, by who, where and what
    /// (fingerprint and values): an approved one runs once when sent again.
    retries: std::collections::HashMap<RetryKey, u64>,
    /// Ended requests by state (kept when the requests are forgotten).
    ended: Counts,
}

impl Registry {
    /// The next request number, unless this gateway's range is used up.
    fn allocate(&mut self) -> Option<u64> {
        if self.limit != 0 && self.next >= self.limit {
            return None;
        }
        self.next += 1;
        Some(self.next)
    }
}

/// What a statement gets when no number is left to hold it under.
const NUMBERS_USED_UP: &str =
    "this gateway has used up its approval request numbers: restart it to take a new range";

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

impl Approvals {
    /// An empty registry.
    pub fn new() -> Self {
        Approvals::default()
    }

    /// Tells `notifier`'s webhooks of each request made and ended.
    pub fn with_notifier(mut self, notifier: Option<notify::Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Webhook deliveries that failed (and notes dropped).
    pub fn notify_failures(&self) -> u64 {
        self.notifier.as_ref().map_or(0, notify::Notifier::failures)
    }

    fn note(&self, event: notify::Event, view: &RequestView) {
        if let Some(n) = &self.notifier {
            n.send(event, view.clone());
        }
    }

    /// Tells the publisher (if any) of a request as it is now. Called
    /// with the registry locked, so that changes are published in the
    /// order they were made (the publisher only queues).
    fn publish(&self, view: &RequestView) {
        if let Some(p) = self.publisher.get() {
            p(view);
        }
    }

    /// Publishes every change of a request from now on (set once; later
    /// calls are ignored).
    pub fn set_publisher(&self, publisher: Publisher) {
        let _ = self.publisher.set(publisher);
    }

    /// Numbers requests `base + 1 ..= base + range` (several gateways
    /// sharing a store each number in a range of their own); past it,
    /// statements are no longer held.
    pub fn set_id_range(&self, base: u64, range: u64) {
        let mut reg = self.registry();
        reg.next = reg.next.max(base);
        reg.limit = base.saturating_add(range);
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a statement: a pending request, and the handle its session
    /// awaits. Dropping the handle while the request is pending withdraws
    /// it (the client left).
    pub fn hold(&self, ask: Ask) -> Held {
        let timeout = ask.review.timeout;
        let created_us = now_us();
        let mut reg = self.registry();
        let Some(id) = reg.allocate() else {
            drop(reg);
            tracing::error!("{NUMBERS_USED_UP}");
            let (_, rx) = watch::channel(State::Withdrawn {
                why: NUMBERS_USED_UP.to_owned(),
            });
            return Held {
                id: 0,
                rx,
                timeout,
                approvals: self.clone(),
            };
        };
        let (tx, rx) = watch::channel(State::Pending);
        let view = RequestView {
            id,
            ask,
            state: State::Pending,
            approvals: Vec::new(),
            created_us,
            expires_us: created_us + timeout.as_micros() as i64,
            retry_key: None,
        };
        reg.requests.insert(
            id,
            Request {
                view,
                state: tx,
                retry: None,
            },
        );
        self.announce(reg, id);
        Held {
            id,
            rx,
            timeout,
            approvals: self.clone(),
        }
    }

    /// A request just made (`id`, in `reg`): what is too old is
    /// forgotten, the request published, and, once the lock is let go,
    /// the webhooks told.
    fn announce(&self, mut reg: std::sync::MutexGuard<'_, Registry>, id: u64) {
        reg.forget_old();
        let made = reg.requests.get(&id).map(|r| r.view.clone());
        if let Some(v) = &made {
            self.publish(v);
        }
        drop(reg);
        if let Some(v) = made {
            self.note(notify::Event::Created, &v);
        }
    }

    /// Every request kept, newest first.
    pub fn list(&self) -> Vec<RequestView> {
        self.registry()
            .requests
            .values()
            .rev()
            .map(|r| r.view.clone())
            .collect()
    }

    /// One request.
    pub fn get(&self, id: u64) -> Option<RequestView> {
        self.registry().requests.get(&id).map(|r| r.view.clone())
    }

    /// `who` approves request `id`; it is approved once its rule's
    /// number of distinct approvers have.
    pub fn approve(
        &self,
        id: u64,
        who: &Identity,
        reason: Option<String>,
    ) -> Result<RequestView, DecisionError> {
        let mut reg = self.registry();
        let r = reg.may_decide(id, who)?;
        if r.view.approvals.iter().any(|a| a.by == who.user) {
            return Err(DecisionError::AlreadyApproved(who.user.clone(), id));
        }
        r.view.approvals.push(Approval {
            by: who.user.clone(),
            reason: reason.filter(|s| !s.trim().is_empty()),
            at_us: now_us(),
        });
        if r.view.approvals.len() >= r.view.ask.review.approvals as usize {
            r.set(State::Approved);
            let valid_for = r.view.ask.review.valid_for.as_micros() as i64;
            if let Some((_, until)) = &mut r.retry {
                *until = now_us() + valid_for;
                // The request now expires if its retry does not come.
                r.view.expires_us = *until;
            }
            let view = r.view.clone();
            reg.ended.approved += 1;
            self.publish(&view);
            drop(reg);
            self.observe(&view);
            return Ok(view);
        }
        let view = r.view.clone();
        self.publish(&view);
        drop(reg);
        Ok(view)
    }

    /// `who` denies request `id` (a reason is required).
    pub fn deny(
        &self,
        id: u64,
        who: &Identity,
        reason: &str,
    ) -> Result<RequestView, DecisionError> {
        if reason.trim().is_empty() {
            return Err(DecisionError::ReasonRequired);
        }
        let mut reg = self.registry();
        let r = reg.may_decide(id, who)?;
        r.set(State::Denied {
            by: who.user.clone(),
            reason: reason.trim().to_owned(),
        });
        let view = r.view.clone();
        reg.ended.denied += 1;
        self.publish(&view);
        drop(reg);
        self.observe(&view);
        Ok(view)
    }

    /// Statement `index` of request `id` reaches this far.
    pub fn set_reach(&self, id: u64, index: usize, reach: String) {
        let mut reg = self.registry();
        let Some(r) = reg.requests.get_mut(&id) else {
            return;
        };
        let Some(s) = r.view.ask.statements.get_mut(index) else {
            return;
        };
        s.reach = Some(reach);
        let view = r.view.clone();
        self.publish(&view);
    }

    /// Ends request `id` as `state` if it is still pending.
    fn end(&self, id: u64, state: State) {
        let mut reg = self.registry();
        let Some(r) = reg.requests.get_mut(&id) else {
            return;
        };
        if r.view.state != State::Pending {
            return;
        }
        let expired = state == State::Expired;
        r.set(state);
        let view = r.view.clone();
        if expired {
            reg.ended.expired += 1;
        } else {
            reg.ended.withdrawn += 1;
        }
        self.publish(&view);
        drop(reg);
        self.observe(&view);
    }

    /// How long an ended request waited.
    fn observe(&self, view: &RequestView) {
        let waited = (now_us() - view.created_us).max(0) as f64 / 1e6;
        self.wait.observe(waited);
        self.note(notify::Event::Decided, view);
    }

    /// Requests pending and ended, for metrics.
    pub fn counts(&self) -> Counts {
        let reg = self.registry();
        Counts {
            pending: reg
                .requests
                .values()
                .filter(|r| r.view.state == State::Pending)
                .count() as u64,
            ..reg.ended
        }
    }

    /// The wait-time histogram (shared: metrics register it).
    pub fn wait_histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.wait.clone()
    }
}

impl Registry {
    /// The request, if `who` may decide it now.
    fn may_decide(&mut self, id: u64, who: &Identity) -> Result<&mut Request, DecisionError> {
        let r = self
            .requests
            .get_mut(&id)
            .ok_or(DecisionError::NotFound(id))?;
        if r.view.state != State::Pending {
            return Err(DecisionError::Decided {
                id,
                state: r.view.state.name(),
            });
        }
        if r.view.ask.requester.user == who.user {
            return Err(DecisionError::OwnRequest(who.user.clone(), id));
        }
        let approvers = &r.view.ask.review.approvers;
        if !approvers.iter().any(|g| who.groups.contains(g)) {
            return Err(DecisionError::NotAnApprover {
                user: who.user.clone(),
                id,
                approvers: approvers.join(", "),
            });
        }
        Ok(r)
    }

    /// Keeps at most [`KEEP_DECIDED`] decided requests.
    fn forget_old(&mut self) {
        let decided: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.view.state != State::Pending)
            .map(|(id, _)| *id)
            .collect();
        for id in decided
            .iter()
            .take(decided.len().saturating_sub(KEEP_DECIDED))
        {
            self.requests.remove(id);
        }
        let requests = &self.requests;
        self.retries.retain(|_, id| requests.contains_key(id));
    }
}

impl Request {
    fn set(&mut self, state: State) {
        self.view.state = state.clone();
        self.state.send_replace(state);
    }
}

/// A held statement's side of its request.
pub struct Held {
    id: u64,
    rx: watch::Receiver<State>,
    timeout: Duration,
    approvals: Approvals,
}

impl Held {
    /// The request's number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the decision: `Approved`, or why it must not run.
    pub async fn decided(&mut self) -> State {
        let decided = async {
            loop {
                let state = self.rx.borrow_and_update().clone();
                if state != State::Pending {
                    return state;
                }
                if self.rx.changed().await.is_err() {
                    return State::Withdrawn {
                        why: "the gateway forgot the request".to_owned(),
                    };
                }
            }
        };
        match tokio::time::timeout(self.timeout, decided).await {
            Ok(state) => state,
            Err(_) => {
                self.approvals.end(self.id, State::Expired);
                // A decision may have landed at the deadline: the
                // registry's state is the one that counts.
                self.approvals
                    .get(self.id)
                    .map_or(State::Expired, |v| v.state)
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.approvals.end(
            self.id,
            State::Withdrawn {
                why: "the client left or cancelled while it was held".to_owned(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask() -> Ask {
        Ask {
            requester: Identity {
                user: "agent".to_owned(),
                groups: Vec::new(),
            },
            target: "app".to_owned(),
            session: "s".to_owned(),
            client: "127.0.0.1:1".to_owned(),
            application: None,
            statements: Vec::new(),
            rule: "r".to_owned(),
            review: ReviewSettings::default(),
        }
    }

    #[tokio::test]
    async fn numbers_stay_in_their_range_and_changes_are_published_in_order() {
        let approvals = Approvals::new();
        approvals.set_id_range(1_000, 2);
        let published = Arc::new(Mutex::new(Vec::new()));
        let seen = published.clone();
        approvals.set_publisher(Box::new(move |v: &RequestView| {
            seen.lock().unwrap().push((v.id, v.state.name()));
        }));
        let first = approvals.hold(ask());
        let second = approvals.hold(ask());
        assert_eq!((first.id(), second.id()), (1_001, 1_002));
        // The range is used up: held no more, never a number of another's.
        let mut third = approvals.hold(ask());
        assert!(
            matches!(third.decided().await, State::Withdrawn { why } if why == NUMBERS_USED_UP)
        );
        drop(first);
        assert_eq!(
            *published.lock().unwrap(),
            vec![(1_001, "pending"), (1_002, "pending"), (1_001, "withdrawn")]
        );
    }

    fn key(ask: &Ask) -> RetryKey {
        RetryKey {
            user: "agent".to_owned(),
            target: "app".to_owned(),
            statement: "DELETE FROM t WHERE id = ?|1".to_owned(),
            rule: RetryKey::rule_of(ask),
        }
    }

    /// An approval of a `retry` statement runs it once, and only under
    /// the rule it was given under: a reload to a stricter rule (more
    /// approvals, other approvers) asks again.
    #[tokio::test]
    async fn a_retry_approval_runs_once_and_only_under_its_rule() {
        let approvals = Approvals::new();
        let mut lenient = ask();
        lenient.review.approvers = vec!["dba".to_owned()];
        let Retry::Pending(id) = approvals.retry(lenient.clone(), key(&lenient)) else {
            panic!("a request is made");
        };
        let alice = Identity {
            user: "alice".to_owned(),
            groups: vec!["dba".to_owned()],
        };
        approvals.approve(id, &alice, None).unwrap();
        let mut strict = lenient.clone();
        strict.review.approvals = 2;
        assert_ne!(key(&strict), key(&lenient));
        assert_ne!(key(&strict).hash(), key(&lenient).hash());
        assert!(
            matches!(approvals.retry(strict.clone(), key(&strict)), Retry::Pending(other) if other != id),
            "a stricter rule asks again"
        );
        assert_eq!(
            approvals.retry(lenient.clone(), key(&lenient)),
            Retry::Approved(id)
        );
        assert!(
            matches!(approvals.retry(lenient.clone(), key(&lenient)), Retry::Pending(other) if other != id),
            "used once"
        );
    }
}
