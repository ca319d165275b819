//! One session's statement judge, shared by both protocols: judges every
//! text with the session's policy, records it, logs each statement with
//! its tags and verdict, and holds a text a rule reviews until it is
//! approved (`approvals`).
//!
//! This module must never let a text run that the policy refused, nor a
//! held one before its approval.

use std::sync::Arc;

use super::held::{PreparedReviews, Template};
use super::{POLICY_LOG, STATEMENT_LOG};

mod origin;
mod retry;

use crate::approvals::{self, Approvals};
use crate::policy::engine::{Engine, Refusal, SessionPolicy};
use crate::policy::parse::SqlDialect;
use crate::policy::rules::Verdict as PolicyVerdict;
use crate::policy::tags::Tag;
use crate::store::writer::Recorder;
use crate::store::SessionStart;
pub use origin::TextOrigin;
use sqlgate_net::identity::{Identity, Login};
use sqlgate_net::verdict::{Notice, Ticket, Verdict};

/// Where a session sits: what it is recorded in, what holds its reviewed
/// statements, and who it is on the wire.
pub(super) struct Seat<'a> {
    pub recorder: Option<&'a Recorder>,
    pub approvals: Option<&'a Approvals>,
    /// Where a held statement's reach is estimated (its target).
    pub estimator: Option<approvals::blast::Estimator>,
    pub peer: std::net::SocketAddr,
    pub tls: bool,
    /// What `/metrics` counts.
    pub counters: Option<&'a Arc<crate::admin::counters::Counters>>,
}

/// One session's statement judge, shared by both protocols.
pub(super) struct Judge {
    pub policy: SessionPolicy,
    /// A long text judged off the runtime's thread (`policy::offload`).
    ahead: crate::policy::offload::Slot,
    /// What the session's statements are recorded in.
    pub log: crate::recording::SessionLog,
    /// What the relay awaits before forwarding the last judged text: its
    /// durable records, its approval.
    pub durable: Option<crate::recording::Durable>,
    dialect: SqlDialect,
    /// Whether the relay masks this session's results (asked once, when
    /// it starts).
    pub masking: Option<bool>,
    session: u32,
    user: String,
    groups: Vec<String>,
    target: String,
    peer: std::net::SocketAddr,
    /// The client's application name, once known.
    pub application: Option<String>,
    approvals: Option<Approvals>,
    estimator: Option<approvals::blast::Estimator>,
    /// What the client is told as its text's hold begins.
    pub notice: Option<approvals::hold::Notice>,
    /// The last judged text (or execution), though allowed by its rules,
    /// may not run: a reviewed one that cannot be held, or one in
    /// `retry` mode that waits for its decision.
    refused: Option<Refusal>,
    /// Reviewed prepared statements, held at each execution.
    reviews: PreparedReviews,
    counters: Option<Arc<crate::admin::counters::Counters>>,
    /// The session's statement counters by verdict and tag, kept.
    statement_counters: StatementCounters,
}

/// One session's handles on `sqlgate_statements_total`'s counters, by
/// verdict and tag (`None`: a statement without tags). Keyed by the
/// enums, not their names: a name's hash costs more than the count.
#[derive(Default)]
struct StatementCounters(
    std::collections::HashMap<
        (PolicyVerdict, Option<Tag>),
        prometheus_client::metrics::counter::Counter,
        // (Keys are the gateway's own values: no client shapes them.)
        foldhash::fast::FixedState,
    >,
);

impl StatementCounters {
    fn count(
        &mut self,
        counters: &crate::admin::counters::Counters,
        verdict: PolicyVerdict,
        tag: Option<Tag>,
    ) {
        self.0
            .entry((verdict, tag))
            .or_insert_with(|| {
                counters.statement_counter(verdict.as_str(), tag.map_or("none", Tag::name))
            })
            .inc();
    }
}

/// How a session logged in, as its record says: `password`, or `oidc`
/// and a JSON object with the provider, issuer, subject and the claims
/// that mapped it (JSON: claim values are the issuer's text, which must
/// not be able to forge fields).
fn login_record(identity: &Identity) -> String {
    match &identity.login {
        Login::Password => "password".to_owned(),
        Login::Token(t) => {
            let matched: serde_json::Map<String, serde_json::Value> = t
                .matched
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            format!(
                "oidc {}",
                serde_json::json!({
                    "provider": t.provider,
                    "iss": t.issuer,
                    "sub": t.subject,
                    "matched": matched,
                })
            )
        }
    }
}

impl Judge {
    pub fn new(
        engine: &Arc<Engine>,
        dialect: SqlDialect,
        session: u32,
        who: (&Identity, &str),
        seat: Seat<'_>,
    ) -> Self {
        let (identity, target) = who;
        let user = identity.user.as_str();
        if let Some(c) = seat.counters {
            c.session(dialect_protocol(dialect), target);
        }
        let groups = identity.groups.clone();
        let recorder = seat.recorder.map(|recorder| {
            recorder.session(&SessionStart {
                instance: recorder.instance().to_owned(),
                user: user.to_owned(),
                groups: groups.clone(),
                auth: login_record(identity),
                client: seat.peer.to_string(),
                tls: seat.tls,
                target: target.to_owned(),
                protocol: match dialect {
                    SqlDialect::Postgres => "postgres",
                    SqlDialect::Mysql => "mysql",
                }
                .to_owned(),
            })
        });
        Judge {
            log: crate::recording::SessionLog::new(recorder),
            durable: None,
            dialect,
            policy: SessionPolicy::new(engine.clone(), dialect, user, &groups, target)
                .holding_reviews(seat.approvals.is_some()),
            ahead: Default::default(),
            masking: None,
            session,
            user: user.to_owned(),
            groups,
            target: target.to_owned(),
            peer: seat.peer,
            application: None,
            approvals: seat.approvals.cloned(),
            estimator: seat.estimator,
            notice: None,
            refused: None,
            reviews: PreparedReviews::default(),
            counters: seat.counters.cloned(),
            statement_counters: StatementCounters::default(),
        }
    }

    /// The request a judged text would make, when a rule reviews it;
    /// refused when nobody can approve it.
    fn template(
        &mut self,
        sql: &[u8],
        judged: &[crate::policy::engine::Judged],
    ) -> Result<Option<Template>, Refusal> {
        use crate::policy::rules::Verdict;
        let Some(first) = judged
            .iter()
            .find(|j| j.decision.verdict == Verdict::Review)
        else {
            return Ok(None);
        };
        let (true, Some((rule, review))) = (
            self.approvals.is_some(),
            self.policy.review(&first.decision),
        ) else {
            // (The policy judges `review` only where it can be held.)
            return Err(refusal(
                "statement requires approval, and nobody can approve it",
                "ask a DBA to name approvers for the rule",
            ));
        };
        // One request, one rule: statements reviewed by different rules
        // (other approvers, other counts) are not approved together.
        let mut rules: Vec<String> = Vec::new();
        for j in judged
            .iter()
            .filter(|j| j.decision.verdict == Verdict::Review)
        {
            if let Some((r, _)) = self.policy.review(&j.decision) {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
        if rules.len() > 1 {
            return Err(refusal(
                &format!(
                    "the statements of this text are reviewed by different rules ({}): send them separately",
                    rules.join(", ")
                ),
                "each statement is then held for its own rule's approvers",
            ));
        }
        let text = String::from_utf8_lossy(sql);
        let statements = judged
            .iter()
            .map(|j| approvals::HeldStatement {
                text: crate::recording::shown_text(
                    self.dialect,
                    j.statement.excerpt(&text),
                    j.tags,
                ),
                tags: j.tags.iter().map(|t| t.name().to_owned()).collect(),
                fingerprint: j.statement.fingerprint.to_string(),
                reviewed: j.decision.verdict == Verdict::Review,
                parameters: None,
                parameters_withheld: false,
                reach: None,
            })
            .collect();
        let estimable = judged
            .iter()
            .map(|j| {
                let tags: Vec<String> = j.tags.iter().map(|t| t.name().to_owned()).collect();
                let excerpt = j.statement.excerpt(&text);
                // (Not one whose text is scrubbed: the server's answer
                // could quote what approvers must not see.)
                let clear = crate::recording::shown_text(self.dialect, excerpt, j.tags) == excerpt;
                // (Nor one that calls code: planning may evaluate it.)
                let plain = tags
                    .iter()
                    .all(|t| t.starts_with("read") || t.starts_with("write"));
                (j.decision.verdict == Verdict::Review
                    && clear
                    && plain
                    && approvals::blast::estimable(&tags))
                .then(|| excerpt.to_owned())
            })
            .collect();
        let ddl = judged
            .iter()
            .map(|j| match (&j.statement.reading, self.dialect) {
                (crate::policy::classify::Reading::Parsed(stmt), SqlDialect::Postgres)
                    if j.decision.verdict == Verdict::Review =>
                {
                    approvals::blast::pg_lock(stmt).map(|(lock, table)| {
                        (
                            lock,
                            table,
                            j.tags.contains(crate::policy::tags::Tag::DdlBlocking),
                        )
                    })
                }
                _ => None,
            })
            .collect();
        let key = approvals::key::text_key(self.dialect, &text);
        Ok(Some(Template {
            statements,
            rule,
            review,
            secret_parameters: crate::recording::may_bind_a_secret(&text),
            key,
            estimable,
            ddl,
        }))
    }

    /// Holds a reviewed text (or one execution of a reviewed prepared
    /// statement, with its parameters): what the relay awaits becomes its
    /// approval, after its durable records.
    fn start_hold(&mut self, t: Template, parameters: Option<Vec<Option<String>>>, executes: bool) {
        let Some(approvals) = &self.approvals else {
            return;
        };
        let mut statements = t.statements;
        for s in statements.iter_mut().filter(|s| s.reviewed) {
            if t.secret_parameters || (executes && parameters.is_none()) {
                // Said, so that an approver can refuse what they cannot
                // see (values that may be a secret, or too large to read).
                s.parameters_withheld = executes;
            } else {
                s.parameters.clone_from(&parameters);
            }
        }
        let ask = approvals::Ask {
            requester: approvals::Identity {
                user: self.user.clone(),
                groups: self.groups.clone(),
            },
            target: self.target.clone(),
            session: self
                .log
                .id()
                .map_or_else(|| self.session.to_string(), str::to_owned),
            client: self.peer.to_string(),
            application: self.application.clone(),
            statements,
            rule: t.rule,
            review: t.review,
        };
        if ask.review.mode == approvals::settings::Mode::Retry {
            if executes && parameters.is_none() {
                // Values it was not read with cannot be matched.
                let refused = refusal(
                    "sqlgate: this execution's values could not be read, so an approval cannot be matched to it",
                    "bind fewer or smaller values, or ask for review_mode = \"wait\"",
                );
                self.refused = Some(refused);
                return;
            }
            let key = approvals::RetryKey {
                user: self.user.clone(),
                target: self.target.clone(),
                statement: format!(
                    "{}|{}",
                    t.key,
                    approvals::key::values_key(parameters.as_deref().unwrap_or_default())
                ),
                rule: approvals::RetryKey::rule_of(&ask),
            };
            self.retry(approvals.clone(), ask, key);
            return;
        }
        let notice = approvals::hold::Notice::of(&ask);
        let hold = approvals::hold::hold(approvals, ask, self.durable.take(), self.log.handle());
        // Its reach, asked on the side (the decision need not wait for it).
        if let Some(estimator) = &self.estimator {
            // A few per request: a text of many statements must not take
            // the target's pool.
            let asks = t
                .estimable
                .into_iter()
                .zip(t.ddl)
                .enumerate()
                .filter(|(_, (e, d))| e.is_some() || d.is_some())
                .take(MAX_ESTIMATES);
            for (index, (statement, ddl)) in asks {
                let (estimator, approvals, id) = (estimator.clone(), approvals.clone(), hold.id);
                match (statement, ddl) {
                    (Some(statement), _) => {
                        tokio::spawn(async move {
                            let reach = estimator.estimate(&statement).await;
                            approvals.set_reach(id, index, reach);
                        });
                    }
                    (None, Some((lock, table, rewrites))) => {
                        tokio::spawn(async move {
                            let reach = estimator.ddl(lock, table.as_deref(), rewrites).await;
                            approvals.set_reach(id, index, reach);
                        });
                    }
                    (None, None) => {}
                }
            }
        }
        tracing::info!(
            target: POLICY_LOG,
            session = self.session,
            user = %self.user,
            target_name = %self.target,
            request = hold.id,
            "held for approval"
        );
        self.notice = Some(notice.numbered(hold.id));
        self.durable = Some(hold.wait);
    }

    /// A judged text: held now, or (a statement being prepared, by the
    /// protocol or by SQL `PREPARE`) at each of its executions. A SQL
    /// `EXECUTE` of a reviewed prepared statement is held like one.
    fn hold(
        &mut self,
        sql: &[u8],
        judged: &[crate::policy::engine::Judged],
        prepares: bool,
    ) -> Result<(), Refusal> {
        use crate::policy::risk::Prepared;
        use crate::policy::rules::Verdict;
        let template = self.template(sql, judged)?;
        if prepares {
            match template {
                None => self.reviews.parsed(None),
                Some(_) if self.reviews.full() => return Err(too_many()),
                Some(t) => self.reviews.parsed(Some(t)),
            }
            return Ok(());
        }
        // SQL `PREPARE name AS <reviewed>`: its executions are held, by
        // SQL or by the protocol; preparing alone runs nothing.
        let mut runs_reviewed = false;
        for j in judged {
            let reviewed = j.decision.verdict == Verdict::Review;
            match (&j.statement.risk.prepared, reviewed, &template) {
                (Some(Prepared::Define(name, _)), true, Some(t)) => {
                    if self.reviews.full() {
                        return Err(too_many());
                    }
                    self.reviews.review(name.as_bytes(), t.clone());
                }
                (_, true, _) => runs_reviewed = true,
                _ => {}
            }
        }
        if runs_reviewed {
            if let Some(t) = template {
                self.start_hold(t, None, false);
            }
            return Ok(());
        }
        // `EXECUTE name` of a statement reviewed when it was prepared.
        let executed = judged
            .iter()
            .find_map(|j| match &j.statement.risk.prepared {
                Some(Prepared::Execute(name)) => self.reviews.get_sql(name).cloned(),
                _ => None,
            });
        if let Some(mut t) = executed {
            // The EXECUTE's own arguments are part of what runs: shown,
            // and in the key.
            let text = String::from_utf8_lossy(sql);
            t.key = format!(
                "{}|{}",
                t.key,
                approvals::key::text_key(self.dialect, &text)
            );
            t.statements.push(approvals::HeldStatement {
                text: crate::recording::shown_text(
                    self.dialect,
                    &text,
                    crate::policy::tags::TagSet::EMPTY,
                ),
                tags: Vec::new(),
                fingerprint: crate::policy::fingerprint::of(self.dialect, &text).key,
                reviewed: true,
                parameters: None,
                parameters_withheld: false,
                reach: None,
            });
            t.estimable.push(None);
            t.ddl.push(None);
            self.start_hold(t, None, false);
        }
        Ok(())
    }

    /// Whether executions of prepared statements are reported (for the
    /// recording, or to hold reviewed ones).
    pub fn follows_executions(&self) -> bool {
        self.log.records_executions() || self.approvals.is_some()
    }

    /// The statement prepared last went to the server as `name`.
    pub fn prepared_as(&mut self, name: &[u8], confirmed: bool) {
        self.log.prepared_as(name, confirmed);
        self.reviews.prepared_as(name, confirmed);
    }

    /// An execution of prepared statement `name`: recorded, and held when
    /// a rule reviews its text. One whose name the relay could not read
    /// (a Bind too large to read whole) is refused where any prepared
    /// statement is reviewed: it could be that one.
    pub fn executed(
        &mut self,
        name: &[u8],
        parameters: Option<sqlgate_net::parameters::Parameters<'_>>,
    ) {
        self.notice = None;
        self.refused = None;
        let unread = name.starts_with(b"\0");
        let review = self.reviews.get(name).cloned();
        // Copied only for a statement held for review (every execution
        // passes here).
        let shown = review
            .as_ref()
            .and_then(|_| parameters.map(sqlgate_net::parameters::Parameters::to_vec));
        self.durable = self.log.executed(name, parameters);
        if unread && self.reviews.any() {
            let refused = refusal(
                "sqlgate: an execution too large to read cannot be checked against the statements held for approval",
                "bind fewer or smaller values",
            );
            self.refused = Some(refused);
            return;
        }
        if let Some(t) = review {
            self.start_hold(t, shown, true);
        }
    }

    /// A text of [`crate::policy::offload::LONG_TEXT`] bytes or more,
    /// before it is judged: its judging on a blocking thread, by a copy
    /// of this session's state, which [`judge`](Self::judge) then takes.
    pub fn ahead(&mut self, sql: &[u8]) -> Option<sqlgate_net::ahead::Ahead> {
        if sql.len() < crate::policy::offload::LONG_TEXT || self.masking_now_applies() {
            return None;
        }
        // (Emptied first: a judging that panics leaves no older one.)
        self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take();
        let copy = self.policy.copy_for_elsewhere();
        Some(crate::policy::offload::judge(copy, sql, self.ahead.clone()))
    }

    /// The session started without masking and masking rules apply now
    /// (a policy reload): its relay does not follow results.
    pub fn masking_now_applies(&mut self) -> bool {
        self.masking == Some(false) && self.policy.masking()
    }

    pub fn judge(
        &mut self,
        origin: impl TextOrigin,
        sql: &[u8],
    ) -> Result<Vec<crate::policy::engine::Judged>, Refusal> {
        self.notice = None;
        self.refused = None;
        // Read once, for the policy and the recording.
        let text = sqlgate_net::sample::lossy(sql);
        // Taken whatever the verdict: a judging left in the slot would
        // hold its parse trees for the rest of the session.
        let ahead = crate::policy::offload::take(&self.ahead, sql);
        // A policy reload made masking rules apply to a session whose relay
        // does not follow results: nothing may run until it reconnects.
        let judged = if self.masking_now_applies() {
            Err(Refusal {
                verdict: crate::policy::rules::Verdict::Deny,
                by: crate::policy::engine::RefusedBy::Masking,
                message: format!(
                    "masking rules now apply to user \"{}\" on target \"{}\" (the policy was reloaded)",
                    self.user, self.target
                ),
                detail: "this session started without masking and cannot mask its results".to_owned(),
                hint: "reconnect".to_owned(),
                position: 1,
                rule: None,
                tags: crate::policy::tags::TagSet::EMPTY,
            })
        } else {
            match ahead {
                // Judged off the runtime's thread (`ahead`), by a copy of
                // this session's state, which is now its own.
                Some(done) => {
                    self.policy.adopt(done.policy);
                    done.judged
                }
                None => self.policy.judge_text(sql, &text),
            }
        };
        let origin_name = origin.record_name();
        // A shape's literal spans are in the text's bytes: only a text
        // that was valid UTF-8 is the same string.
        let shape = self
            .policy
            .shape()
            .filter(|_| matches!(text, std::borrow::Cow::Borrowed(_)));
        self.durable = self
            .log
            .judged(self.dialect, origin_name, &text, &judged, shape);
        let prepares = matches!(origin_name, "parse" | "prepare");
        self.reviews.parsed(None);
        // Nothing can be held during a login: no request is made.
        let judged = if origin_name == "startup" {
            judged.and_then(|judged| {
                match judged.iter().any(|j| j.decision.verdict == crate::policy::rules::Verdict::Review) {
                    true => Err(refusal(
                        "sqlgate: these startup settings need approval, which cannot wait during a login",
                        "connect without them and SET them in the session, where the statement can be held",
                    )),
                    false => Ok(judged),
                }
            })
        } else {
            judged.and_then(|judged| self.hold(sql, &judged, prepares).map(|()| judged))
        };
        if let Some(c) = &self.counters {
            match &judged {
                Ok(judged) => {
                    for j in judged {
                        let verdict = j.decision.verdict;
                        let mut tags = j.tags.iter().peekable();
                        if tags.peek().is_none() {
                            self.statement_counters.count(c, verdict, None);
                        }
                        for tag in tags {
                            self.statement_counters.count(c, verdict, Some(tag));
                        }
                    }
                }
                Err(r) => c.refusal(
                    &r.verdict.to_string(),
                    r.rule.as_deref().unwrap_or(match (r.by, r.verdict) {
                        // Reviewed, but it could not be held.
                        (
                            crate::policy::engine::RefusedBy::Policy,
                            crate::policy::rules::Verdict::Review,
                        ) => "(review not held)",
                        (crate::policy::engine::RefusedBy::Policy, _) => "(defaults)",
                        (crate::policy::engine::RefusedBy::Masking, _) => "masking",
                        _ => "boundary",
                    }),
                ),
            }
        }
        match judged {
            Ok(judged) => {
                if tracing::enabled!(target: STATEMENT_LOG, tracing::Level::DEBUG) {
                    let text = String::from_utf8_lossy(sql);
                    for j in &judged {
                        tracing::debug!(
                            target: STATEMENT_LOG,
                            session = self.session,
                            user = %self.user,
                            target_name = %self.target,
                            ?origin,
                            tags = %j.tags,
                            verdict = %j.decision.verdict,
                            statement = %crate::recording::loggable(self.dialect, j.statement.excerpt(&text)),
                            "statement"
                        );
                    }
                }
                Ok(judged)
            }
            Err(refusal) => {
                tracing::info!(
                    target: POLICY_LOG,
                    session = self.session,
                    user = %self.user,
                    target_name = %self.target,
                    ?origin,
                    verdict = %refusal.verdict,
                    detail = %crate::recording::loggable(self.dialect, &refusal.detail),
                    "{}",
                    refusal.message
                );
                Err(refusal)
            }
        }
    }
}

/// Reach estimates asked per request, at most.
const MAX_ESTIMATES: usize = 4;

impl Judge {
    /// Where the relay reports each request's server time (`/metrics`).
    pub fn timings(&self) -> Option<sqlgate_net::outcome::Timings> {
        let histogram = self.counters.as_ref()?.request_seconds.clone();
        Some(std::sync::Arc::new(move |took: std::time::Duration| {
            histogram.observe(took.as_secs_f64())
        }))
    }

    /// What counts this session's masked cells (a counter of its own when
    /// nothing reads them).
    pub fn masked_cells(&self) -> prometheus_client::metrics::counter::Counter {
        self.counters
            .as_ref()
            .map(|c| c.masked_cells.clone())
            .unwrap_or_default()
    }
}

/// The protocol a dialect is spoken in, as metrics label it.
fn dialect_protocol(dialect: SqlDialect) -> &'static str {
    match dialect {
        SqlDialect::Postgres => "postgres",
        SqlDialect::Mysql => "mysql",
    }
}

/// What the relay is told of the text (or execution) just judged:
/// refused, allowed, or held until its wait ends (its records durable, its
/// approval).
pub(super) fn verdict<M>(judge: &mut Judge, judged: Result<M, Refusal>) -> Verdict<M> {
    let notice = judge.notice.take();
    let wait = judge.durable.take();
    match (judged, judge.refused.take()) {
        (Err(r), _) | (Ok(_), Some(r)) => Verdict::Refuse(neutral(r)),
        (Ok(m), None) => match wait {
            None => Verdict::Allow(m),
            Some(wait) => Verdict::Hold {
                ticket: Ticket {
                    notice: notice.map(|n| Notice {
                        message: n.message,
                        detail: n.detail,
                    }),
                    wait: Box::pin(async move { wait.await.map_err(neutral) }),
                },
                then: m,
            },
        },
    }
}

/// A refusal in the words both protocols share; each protocol crate
/// alone turns it into its wire's error.
pub(super) fn neutral(r: Refusal) -> sqlgate_net::verdict::Refusal {
    use crate::policy::engine::RefusedBy;
    use sqlgate_net::verdict::RefusalKind;
    let kind = match (r.by, r.verdict) {
        (RefusedBy::Policy, crate::policy::rules::Verdict::Review) => RefusalKind::NotApproved,
        (RefusedBy::Policy, _) => RefusalKind::Denied,
        (RefusedBy::Reach, _) => RefusalKind::OutOfReach,
        (RefusedBy::Masking, _) => RefusalKind::Masking,
        (RefusedBy::Recording, _) => RefusalKind::NotRecorded,
    };
    sqlgate_net::verdict::Refusal {
        kind,
        rule: r.rule,
        tags: r.tags.iter().map(|t| t.name().to_owned()).collect(),
        reason: r.message,
        detail: r.detail,
        hint: r.hint,
        position: r.position,
    }
}

/// A refusal of a reviewed statement that cannot be held.
fn refusal(message: &str, hint: &str) -> Refusal {
    Refusal {
        verdict: crate::policy::rules::Verdict::Review,
        by: crate::policy::engine::RefusedBy::Policy,
        message: message.to_owned(),
        detail: String::new(),
        hint: hint.to_owned(),
        position: 1,
        rule: None,
        tags: crate::policy::tags::TagSet::EMPTY,
    }
}

fn too_many() -> Refusal {
    refusal(
        "too many prepared statements held for approval in this session",
        "close prepared statements you no longer use",
    )
}
