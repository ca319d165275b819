//! A judged text held for approval, as its session's relay sees it: one
//! wait that completes when the request is approved (the text runs) or
//! with the refusal that names the decision (it never runs), recorded
//! both when made and when decided.
//!
//! This module must never complete the wait `Ok` for a request that is
//! not approved.

use super::{Approvals, Ask, State};
use crate::policy::engine::{Refusal, RefusedBy};
use crate::policy::rules::Verdict;
use crate::recording::Durable;
use crate::store::session::SessionHandle;
use crate::store::ApprovalEvent;

/// A held text: its request's number and the wait the relay awaits.
pub struct Hold {
    /// The request's number.
    pub id: u64,
    /// Completes when the text may run, or with why it must not.
    pub wait: Durable,
}

/// Holds `ask` in `approvals`; `before`: what must complete first (the
/// text's durable records).
pub fn hold(
    approvals: &Approvals,
    ask: Ask,
    before: Option<Durable>,
    record: Option<SessionHandle>,
) -> Hold {
    let rule = ask.rule.clone();
    let needed = ask.review.approvals;
    let timeout = ask.review.timeout;
    let mut held = approvals.hold(ask);
    let id = held.id();
    let event = {
        let rule = rule.clone();
        move |state: &State, by: Vec<String>, reason: Option<String>| ApprovalEvent {
            request: id,
            state: state.name().to_owned(),
            rule: rule.clone(),
            by,
            reason,
        }
    };
    if let Some(r) = &record {
        r.approval(&event(&State::Pending, Vec::new(), None));
    }
    let view = approvals.clone();
    // Dropped before its decision (the client left): recorded withdrawn.
    let mut withdrawn = Withdrawn(record.clone().map(|r| {
        (
            r,
            event(
                &State::Withdrawn { why: String::new() },
                Vec::new(),
                Some("the client left or cancelled while it was held".to_owned()),
            ),
        )
    }));
    let wait = Box::pin(async move {
        if let Some(before) = before {
            before.await?;
        }
        let state = held.decided().await;
        withdrawn.disarm();
        let approvals_given = view.get(id).map(|v| v.approvals).unwrap_or_default();
        let (by, reason) = match &state {
            State::Denied { by, reason } => (vec![by.clone()], Some(reason.clone())),
            _ => (
                approvals_given.iter().map(|a| a.by.clone()).collect(),
                approvals_given.iter().rev().find_map(|a| a.reason.clone()),
            ),
        };
        if let Some(r) = &record {
            r.approval(&event(&state, by, reason));
        }
        let (message, hint) = match state {
            State::Approved => return Ok(()),
            State::Denied { by, reason } => (
                format!("sqlgate: request #{id} was denied by {by}: {reason}"),
                "the statement did not run".to_owned(),
            ),
            State::Expired => (
                format!(
                    "sqlgate: request #{id} expired after {}s with {} of {needed} approvals",
                    timeout.as_secs(),
                    approvals_given.len()
                ),
                "the statement did not run; send it again to ask again".to_owned(),
            ),
            State::Pending | State::Withdrawn { .. } => (
                format!("sqlgate: request #{id} was withdrawn"),
                "the statement did not run".to_owned(),
            ),
        };
        Err(Refusal {
            verdict: Verdict::Review,
            by: RefusedBy::Policy,
            message,
            detail: format!("held for approval by rule \"{rule}\""),
            hint,
            position: 1,
            rule: None,
            tags: crate::policy::tags::TagSet::EMPTY,
        })
    });
    Hold { id, wait }
}

/// Records a request withdrawn when its wait is dropped undecided.
struct Withdrawn(Option<(SessionHandle, ApprovalEvent)>);

impl Withdrawn {
    /// The request was decided: nothing to record on drop.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Withdrawn {
    fn drop(&mut self) {
        if let Some((record, event)) = self.0.take() {
            record.approval(&event);
        }
    }
}

/// What a client is told as its text's hold begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line: the request's number and how to approve it.
    pub message: String,
    /// Who must approve, how long it waits, and what waits with it.
    pub detail: String,
}

impl Notice {
    /// The notice for `ask` (numbered by [`Notice::numbered`]).
    pub fn of(ask: &Ask) -> Notice {
        let r = &ask.review;
        Notice {
            message: String::new(),
            detail: format!(
                "rule \"{}\" needs {} approval{} from {} within {}s; everything else on this connection waits (a held statement inside a transaction holds the transaction)",
                ask.rule,
                r.approvals,
                if r.approvals == 1 { "" } else { "s" },
                r.approvers.join(", "),
                r.timeout.as_secs()
            ),
        }
    }

    /// With its request's number.
    pub fn numbered(mut self, id: u64) -> Notice {
        self.message =
            format!("sqlgate: held for approval #{id} - approve: sqlgate approvals approve {id}");
        self
    }
}
