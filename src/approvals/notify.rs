//! Webhooks (`[[notify]]`): each request held for approval, when made and
//! when it ends, posted to the URLs a DBA names — JSON, or a
//! Slack-compatible body — so that approvers learn of it without
//! watching the API.
//!
//! ```toml
//! [[notify]]
//! url = "https://hooks.slack.com/services/..."
//! format = "slack"            # or "json" (the default)
//! ```
//!
//! This module must never block a relay nor hold memory without bound:
//! notes go through a bounded queue (a full one drops and counts), and
//! deliveries, retried with backoff a bounded number of times, run on a
//! thread of their own, one at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::RequestView;
use crate::config::check::Problems;

/// Notes waiting for delivery, at most.
const QUEUE: usize = 1024;
/// Tries per delivery, and the first pause between them (doubled).
const TRIES: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// How long one try may take.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// `[[notify]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    url: Spanned<String>,
    format: Option<Spanned<String>>,
}

/// A body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"event": "created" | "decided", "request": {...}}`.
    Json,
    /// `{"text": "..."}`, as Slack's incoming webhooks take it.
    Slack,
}

/// One webhook.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// Where it posts.
    pub url: String,
    /// How.
    pub format: Format,
}

/// Validates `[[notify]]`.
pub(crate) fn parse(raw: Vec<RawNotify>, p: &mut Problems) -> Vec<Webhook> {
    let mut out = Vec::new();
    for n in raw {
        let url = n.url.get_ref().trim().to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            p.at(
                n.url.span(),
                "notify.url",
                "must be an http:// or https:// URL",
            );
            continue;
        }
        let format = match n.format.as_ref().map(|f| f.get_ref().as_str()) {
            None | Some("json") => Format::Json,
            Some("slack") => Format::Slack,
            Some(_) => {
                let span = n.format.as_ref().map(Spanned::span).unwrap_or(0..0);
                p.at(span, "notify.format", "must be \"json\" or \"slack\"");
                continue;
            }
        };
        out.push(Webhook { url, format });
    }
    out
}

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// It was made (a statement is held, or refused in `retry` mode).
    Created,
    /// It ended (approved, denied, expired, withdrawn).
    Decided,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::Decided => "decided",
        }
    }
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: tokio::sync::mpsc::Sender<(Event, RequestView)>,
    /// Deliveries that failed every try, and notes dropped (queue full).
    failures: Arc<AtomicU64>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// Starts delivering to `hooks` (on the current runtime).
    pub fn start(hooks: Vec<Webhook>) -> Notifier {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Event, RequestView)>(QUEUE);
        let failures = Arc::new(AtomicU64::new(0));
        let failed = failures.clone();
        let hooks = Arc::new(hooks);
        tokio::spawn(async move {
            while let Some((event, view)) = rx.recv().await {
                let (hooks, failed) = (hooks.clone(), failed.clone());
                // One delivery at a time, off the runtime's threads.
                let _ = tokio::task::spawn_blocking(move || {
                    for hook in hooks.iter() {
                        if !deliver(hook, event, &view) {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
                .await;
            }
        });
        Notifier { tx, failures }
    }

    /// Queues a note; never waits (a full queue drops it, counted).
    pub fn send(&self, event: Event, view: RequestView) {
        if self.tx.try_send((event, view)).is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("approvals: a webhook note was dropped (the queue is full)");
        }
    }

    /// Deliveries that failed and notes dropped.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Posts one note, retried with backoff; whether it was taken.
fn deliver(hook: &Webhook, event: Event, view: &RequestView) -> bool {
    let body = match hook.format {
        Format::Json => serde_json::json!({ "event": event.name(), "request": view }),
        Format::Slack => serde_json::json!({ "text": slack_text(event, view) }),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TRY_TIMEOUT))
        .build()
        .into();
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=TRIES {
        match agent.post(&hook.url).send_json(&body) {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                tracing::warn!(url = %hook.url, status = r.status().as_u16(), attempt, "approvals: a webhook refused a note")
            }
            Err(e) => {
                tracing::warn!(url = %hook.url, error = %e, attempt, "approvals: a webhook could not be reached")
            }
        }
        if attempt < TRIES {
            std::thread::sleep(pause);
            pause *= 2;
        }
    }
    tracing::error!(url = %hook.url, request = view.id, "approvals: a webhook note was not delivered");
    false
}

/// A Slack message: the request, its statements, and how to decide it.
fn slack_text(event: Event, view: &RequestView) -> String {
    let a = &view.ask;
    let mut text = format!(
        "sqlgate: request #{} by {} on {} (rule {}): {}",
        view.id,
        a.requester.user,
        a.target,
        a.rule,
        view.state.name()
    );
    if event == Event::Created {
        for s in &a.statements {
            text.push_str(&format!("\n```{}```\ntags: {}", s.text, s.tags.join(", ")));
            if let Some(r) = &s.reach {
                text.push_str(&format!(" · reach: {r}"));
            }
        }
        text.push_str(&format!(
            "\napprove: `sqlgate approvals approve {0}` · deny: `sqlgate approvals deny {0} --reason ...`",
            view.id
        ));
    }
    text
}
