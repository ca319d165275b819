//! `review_mode = "retry"`: a reviewed statement is refused at once with
//! its request's number; once approved, the same identity sending the
//! same statement (fingerprint and values) on the same target runs it
//! once. Where gateways share the store, the approval is claimed there
//! (an asynchronous wait before the statement runs), so that one asked
//! on gateway A may run on gateway B, and never on both.
//!
//! This module must never let a statement run on an approval it did not
//! claim, nor on one of another statement.

use super::{refusal, Judge, POLICY_LOG};
use crate::approvals::{self, Approvals};
use crate::policy::engine::Refusal;
use crate::store::session::SessionHandle;

/// What is recorded and logged of a retry's outcome.
struct Report {
    log: Option<SessionHandle>,
    session: u32,
    user: String,
    target: String,
    rule: String,
    valid_for: u64,
}

impl Report {
    /// Records and logs the outcome; `Err` for a statement that may not
    /// run (its request pending, or none could be made).
    fn settle(&self, outcome: approvals::Retry, by: Vec<String>) -> Result<(), Refusal> {
        let (id, state) = match outcome {
            approvals::Retry::Approved(id) => (id, "approved"),
            approvals::Retry::Pending(id) => (id, "pending"),
            approvals::Retry::TooMany => {
                return Err(refusal(
                    "sqlgate: too many requests of this identity wait for approval",
                    "wait for the pending ones to be decided or to expire",
                ))
            }
        };
        if let Some(h) = &self.log {
            h.approval(&crate::store::ApprovalEvent {
                request: id,
                state: state.to_owned(),
                rule: self.rule.clone(),
                by,
                reason: None,
            });
        }
        tracing::info!(
            target: POLICY_LOG,
            session = self.session,
            user = %self.user,
            target_name = %self.target,
            request = id,
            state,
            "review_mode = retry"
        );
        match outcome {
            approvals::Retry::Pending(id) => Err(refusal(
                &format!(
                    "sqlgate: held for approval as request #{id} (rule \"{}\"): once it is approved, send the same statement again within {}s",
                    self.rule, self.valid_for
                ),
                &format!("approve: sqlgate approvals approve {id}"),
            )),
            _ => Ok(()),
        }
    }
}

impl Report {
    /// Records a retry refused because the shared store could not be
    /// asked whether it is approved (no request number is known).
    fn unchecked(&self, why: &str) {
        if let Some(h) = &self.log {
            h.approval(&crate::store::ApprovalEvent {
                request: 0,
                state: "unchecked".to_owned(),
                rule: self.rule.clone(),
                by: Vec::new(),
                reason: Some(why.to_owned()),
            });
        }
    }
}

impl Judge {
    /// A reviewed statement in `retry` mode: runs once on an approval of
    /// the same statement, else is refused naming its request.
    pub(super) fn retry(
        &mut self,
        approvals: Approvals,
        ask: approvals::Ask,
        key: approvals::RetryKey,
    ) {
        let report = Report {
            log: self.log.handle(),
            session: self.session,
            user: self.user.clone(),
            target: self.target.clone(),
            rule: ask.rule.clone(),
            valid_for: ask.review.valid_for.as_secs(),
        };
        if !approvals.is_shared() {
            let outcome = approvals.retry(ask, key);
            let by = match outcome {
                approvals::Retry::Approved(id) => approvals
                    .get(id)
                    .map(|v| v.approvals.iter().map(|a| a.by.clone()).collect())
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            if let Err(refused) = report.settle(outcome, by) {
                self.refused = Some(refused);
            }
            return;
        }
        // Its records first: an approval is never used by a statement
        // that then cannot run.
        let recorded = self.durable.take();
        self.durable = Some(Box::pin(async move {
            if let Some(recorded) = recorded {
                recorded.await?;
            }
            let (outcome, by) = approvals.retry_anywhere(ask, key).await.map_err(|e| {
                tracing::warn!(target: POLICY_LOG, error = %e, "review_mode = retry: the shared store could not be asked");
                report.unchecked(&e.to_string());
                refusal(
                    &format!("sqlgate: whether this statement is approved could not be checked: {e}"),
                    "send it again when the approvals store is back",
                )
            })?;
            report.settle(outcome, by)
        }));
    }
}
