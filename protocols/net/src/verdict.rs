//! What the engine decides of a statement, in no protocol's words: run it
//! (with what the relay must follow of its results), refuse it and say
//! why, or hold it until a wait ends (its record durable, a person's
//! approval). The engine returns a [`Verdict`] from each statement hook;
//! each protocol crate alone turns a [`Refusal`] and a [`Notice`] into its
//! wire's error and notice messages.
//!
//! This module must never hold wire bytes, nor decide anything itself.

use std::future::Future;
use std::pin::Pin;

/// The engine's decision on one statement text (or one execution of a
/// prepared statement), before any of it reaches the server.
pub enum Verdict<M> {
    /// Forward it now; `M` is what the relay must follow of its results
    /// (their masks), or `()`.
    Allow(M),
    /// Never forward it: the client gets this refusal, the server
    /// nothing.
    Refuse(Refusal),
    /// Forward it only once the ticket's wait ends well; a wait that ends
    /// in a refusal refuses it as [`Verdict::Refuse`] would. Everything
    /// else the client sent waits behind it.
    Hold {
        /// What is awaited, and what the client is told meanwhile.
        ticket: Ticket,
        /// What the relay follows once it runs.
        then: M,
    },
}

impl<M> Verdict<M> {
    /// The same decision, following `f(M)` when it runs.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> Verdict<N> {
        match self {
            Verdict::Allow(m) => Verdict::Allow(f(m)),
            Verdict::Refuse(r) => Verdict::Refuse(r),
            Verdict::Hold { ticket, then } => Verdict::Hold {
                ticket,
                then: f(then),
            },
        }
    }

    /// As a wait, for a relay that can only wait at this point (a Bind, a
    /// COM_STMT_EXECUTE read in part): `None` to forward at once, a wait
    /// that fails at once for a refusal.
    pub fn into_ticket(self) -> Option<Ticket> {
        match self {
            Verdict::Allow(_) => None,
            Verdict::Refuse(r) => Some(Ticket::refused(r)),
            Verdict::Hold { ticket, .. } => Some(ticket),
        }
    }
}

impl<M: std::fmt::Debug> std::fmt::Debug for Verdict<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Allow(m) => f.debug_tuple("Allow").field(m).finish(),
            Verdict::Refuse(r) => f.debug_tuple("Refuse").field(r).finish(),
            Verdict::Hold { ticket, then } => f
                .debug_struct("Hold")
                .field("notice", &ticket.notice)
                .field("then", then)
                .finish(),
        }
    }
}

/// What refused a statement; each protocol picks its error code by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A rule (or the policy's defaults) denies it.
    Denied,
    /// A rule wants a person's approval, and it was not given: it could
    /// not be held, it was denied, it expired, it was withdrawn, or (in
    /// `retry` mode) it waits for a decision.
    NotApproved,
    /// It names a database outside its target.
    OutOfReach,
    /// Masking cannot follow it, or what it would return.
    Masking,
    /// It had to be recorded before it ran, and could not be.
    NotRecorded,
}

/// A refused statement, in words a person and an agent can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What refused it.
    pub kind: RefusalKind,
    /// The rule that decided, when a rule did.
    pub rule: Option<String>,
    /// The statement's risk tags (by name), when it was read.
    pub tags: Vec<String>,
    /// One line: what was refused and by what.
    pub reason: String,
    /// The statement (an excerpt) and its tags.
    pub detail: String,
    /// What to do about it (may be empty).
    pub hint: String,
    /// 1-based character position of the statement in its text (0: none).
    pub position: usize,
}

/// What a client is told at once when its statement starts to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// One line: why it waits and how to end the wait.
    pub message: String,
    /// What waits, in detail.
    pub detail: String,
}

/// A wait the relay awaits before forwarding a held statement; an error
/// refuses it.
pub type Wait = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send>>;

/// A held statement's wait and what the client is told as it begins.
pub struct Ticket {
    /// Said to the client at once, where its protocol can (PostgreSQL's
    /// NoticeResponse; MySQL clients simply wait). Present exactly when
    /// a person must act (an approval); a wait for the gateway's own work
    /// (a durable record) says nothing.
    pub notice: Option<Notice>,
    /// What must end well before the statement is forwarded.
    pub wait: Wait,
}

impl Ticket {
    /// A wait, told nothing.
    pub fn silent(wait: Wait) -> Ticket {
        Ticket { notice: None, wait }
    }

    /// Whether the wait is for a person (an approval), not for the
    /// gateway's own work.
    pub fn asks_a_person(&self) -> bool {
        self.notice.is_some()
    }

    /// A wait that ends at once in `refusal`.
    pub fn refused(refusal: Refusal) -> Ticket {
        Ticket::silent(Box::pin(std::future::ready(Err(refusal))))
    }
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("notice", &self.notice)
            .finish_non_exhaustive()
    }
}
