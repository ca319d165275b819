//! The store's commands: `sqlgate sessions list | show | export` and
//! `sqlgate audit verify`, reading the store directly (the admin API will
//! serve the same data over HTTP). Nothing here writes.

use std::fmt::Write as _;

use super::chain::{verify, Break, Report};
use super::checkpoint::PublicKey;
use super::table::printable;
use super::{Kind, SessionStart, StatementEvent, Store, StoreError};

/// Filters of `sessions list`.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Only this user's.
    pub user: Option<String>,
    /// Only this target's.
    pub target: Option<String>,
    /// Started at or after (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Started before.
    pub until_us: Option<i64>,
    /// Only sessions with a refused statement.
    pub refused: bool,
}

fn time(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let (y, m, d) = crate::masking::dates::civil_from_days(days);
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `sessions list`: a table, newest first.
pub fn list(store: &mut dyn Store, f: &Filter) -> Result<String, StoreError> {
    let mut out = format!(
        "{:<32}  {:<12}  {:<10}  {:<19}  {:>9}  {:>10}  {:>7}\n",
        "id", "user", "target", "start (UTC)", "duration", "statements", "refused"
    );
    for s in store.sessions()? {
        if f.user.as_ref().is_some_and(|u| *u != s.user)
            || f.target.as_ref().is_some_and(|t| *t != s.target)
            || f.since_us.is_some_and(|t| s.started_us < t)
            || f.until_us.is_some_and(|t| s.started_us >= t)
            || (f.refused && s.refused == 0)
        {
            continue;
        }
        let duration = match s.ended_us {
            Some(e) => format!("{:.1}s", (e - s.started_us) as f64 / 1e6),
            None => "open".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<32}  {:<12}  {:<10}  {:<19}  {:>9}  {:>10}  {:>7}",
            s.id,
            s.user,
            s.target,
            time(s.started_us),
            duration,
            s.statements,
            s.refused
        );
    }
    Ok(out)
}

/// `sessions show`: who, then each statement with its verdict and tags.
pub fn show(store: &mut dyn Store, id: &str) -> Result<Option<String>, StoreError> {
    let rows = store.rows(id)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, r) in super::events(&rows).iter().enumerate() {
        match r.kind {
            Kind::SessionStart => {
                if let Ok(s) = serde_json::from_str::<SessionStart>(&r.body) {
                    let _ = writeln!(
                        out,
                        "session {id}: {} ({}) on {} ({}) from {}{}, gateway {}, {}",
                        s.user,
                        s.groups.join(", "),
                        s.target,
                        s.protocol,
                        s.client,
                        if s.tls { " over TLS" } else { "" },
                        s.instance,
                        time(r.at_us)
                    );
                }
            }
            Kind::Statement => {
                if let Ok(e) = serde_json::from_str::<StatementEvent>(&r.body) {
                    let _ = writeln!(
                        out,
                        "\n[{}] #{} {} ({}){}\n  {}",
                        time(r.at_us),
                        i,
                        e.verdict,
                        if e.tags.is_empty() {
                            "-".to_owned()
                        } else {
                            e.tags.join(", ")
                        },
                        if e.masked { ", results masked" } else { "" },
                        printable(&e.text).replace('\n', "\n  ")
                    );
                    if let Some(p) = &e.parameters {
                        let _ = writeln!(out, "  parameters: {}", parameters(p));
                    }
                    if let Some(rule) = &e.rule {
                        let _ = writeln!(out, "  rule: {}", printable(rule));
                    }
                    if !e.masked_columns.is_empty() {
                        let _ =
                            writeln!(out, "  masked: {}", printable(&e.masked_columns.join(", ")));
                    }
                    if let Some(why) = &e.refusal {
                        let _ = writeln!(out, "  refused: {}", printable(why));
                    }
                }
            }
            Kind::Approval => {
                if let Ok(a) = serde_json::from_str::<super::ApprovalEvent>(&r.body) {
                    let _ = writeln!(out, "  {} [{}]", approval_line(&a), time(r.at_us));
                }
            }
            Kind::Outcome => {
                if let Ok(o) = serde_json::from_str::<super::OutcomeEvent>(&r.body) {
                    match (o.tag, o.code) {
                        (Some(tag), _) => {
                            let _ = writeln!(
                                out,
                                "  -> {tag} ({} rows, {} bytes{}) [{}]",
                                o.rows,
                                o.bytes,
                                o.result
                                    .as_ref()
                                    .map(|r| format!(", {} recorded", r.rows.len()))
                                    .unwrap_or_default(),
                                time(r.at_us)
                            );
                        }
                        (None, Some(code)) => {
                            let _ = writeln!(
                                out,
                                "  -> ERROR {code}: {} [{}]",
                                o.message.unwrap_or_default(),
                                time(r.at_us)
                            );
                        }
                        _ => {}
                    }
                }
            }
            // (events() leaves no Events record whole, and no definition.)
            Kind::Events | Kind::Definition => {}
            Kind::Connected => {
                if let Ok(c) = serde_json::from_str::<super::Connected>(&r.body) {
                    let _ = writeln!(
                        out,
                        "server connection {}{}",
                        c.server_id,
                        c.application
                            .map(|a| format!(", application {a}"))
                            .unwrap_or_default()
                    );
                }
            }
            Kind::SessionEnd => {
                if let Ok(e) = serde_json::from_str::<super::SessionEnd>(&r.body) {
                    let _ = writeln!(
                        out,
                        "\n[{}] session ended: {} ({} bytes in, {} bytes out)",
                        time(r.at_us),
                        e.reason,
                        e.bytes_in,
                        e.bytes_out
                    );
                }
            }
        }
    }
    Ok(Some(out))
}

/// Bound parameter values as `$1 = '42', $2 = NULL`.
fn parameters(values: &[Option<String>]) -> String {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(v) => format!("${} = '{}'", i + 1, printable(v).replace('\'', "''")),
            None => format!("${} = NULL", i + 1),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sessions export --format jsonl`: one event a line, with the record
/// it is in and that record's hash (its place in the chain).
pub fn export(store: &mut dyn Store, ids: &[String]) -> Result<String, StoreError> {
    let mut out = String::new();
    for id in ids {
        let rows = store.rows(id)?;
        for (i, e) in super::events(&rows).iter().enumerate() {
            let body: serde_json::Value = serde_json::from_str(&e.body).unwrap_or_default();
            let hash = rows
                .get(e.record as usize)
                .map(|r| hex::encode(r.hash))
                .unwrap_or_default();
            let line = serde_json::json!({
                "session": id,
                "seq": i,
                "record": e.record,
                "kind": e.kind.as_str(),
                "at_us": e.at_us,
                "event": body,
                "record_hash": hash,
            });
            let _ = writeln!(out, "{line}");
        }
    }
    Ok(out)
}

/// `audit verify`: the report as text; `true` when the trail is intact.
pub fn verify_text(
    store: &mut dyn Store,
    public: Option<&PublicKey>,
) -> Result<(String, bool), StoreError> {
    let r: Report = verify(store, public)?;
    let mut out = format!(
        "{} sessions, {} records, {} links verified",
        r.sessions, r.records, r.links
    );
    match (public, r.signed_through) {
        (None, _) => out.push_str("; signatures not checked (no --public-key)"),
        (Some(_), Some(link)) => {
            let _ = write!(
                out,
                "; {} checkpoints signed, through link {link}",
                r.signed
            );
        }
        (Some(_), None) => out.push_str("; no signed checkpoint yet"),
    }
    if let Some(n) = r.pruned_through {
        let _ = write!(out, "; retention pruned links through {n}");
    }
    if !r.open.is_empty() {
        let _ = write!(out, "; {} sessions not ended (no link yet)", r.open.len());
    }
    out.push('\n');
    match r.broken {
        None => {
            out.push_str("the trail is intact\n");
            Ok((out, true))
        }
        Some(f) if f.what == Break::Stray => {
            let _ = writeln!(
                out,
                "BROKEN: {} records belong to no session's records (added, or a session's thread rewired around them)",
                f.seq
            );
            Ok((out, false))
        }
        Some(f) => {
            let what = match f.what {
                Break::Edited => "a record's content does not match its hash (edited)",
                Break::Missing => "a record is missing or out of place (deleted or reordered)",
                Break::Relinked => {
                    "a record does not follow its predecessor (reordered or replaced)"
                }
                Break::Cut => {
                    "the session's records do not end where its link says (cut or extended)"
                }
                Break::Chain => "a link of the gateway-wide chain is missing, edited or reordered",
                Break::SessionGone => "a linked session has no records (deleted)",
                Break::Unlinked => {
                    "an ended session has no link (its link or the chain's tail was removed)"
                }
                Break::Checkpoint => "a checkpoint's signature does not verify, or the link it signed is no longer the chain's (recomputed or cut)",
                Break::Anchor => "the retention anchor's signature does not verify (a prefix of the chain was cut)",
                Break::Stray => "records belong to no session's records",
            };
            let _ = writeln!(out, "BROKEN: session {} at {}: {what}", f.session, f.seq);
            Ok((out, false))
        }
    }
}

/// `sessions replay`: the session as a terminal transcript, each
/// statement as the client sent it and what came of it, with the
/// original pacing divided by `speed` (`None`: no waiting). Results show
/// as tables of the rows recorded (as the client saw them), or as their
/// tag and row count.
pub fn replay(
    store: &mut dyn Store,
    id: &str,
    speed: Option<f64>,
    out: &mut dyn std::io::Write,
) -> Result<bool, StoreError> {
    let rows = store.rows(id)?;
    if rows.is_empty() {
        return Ok(false);
    }
    let io = |e: std::io::Error| StoreError::Backend(e.to_string());
    let mut prompt = String::from("=> ");
    let mut last_at: Option<i64> = None;
    for r in &super::events(&rows) {
        if let (Some(speed), Some(last)) = (speed, last_at) {
            let wait = ((r.at_us - last).max(0) as f64 / speed) as u64;
            out.flush().map_err(io)?;
            std::thread::sleep(std::time::Duration::from_micros(wait.min(10_000_000)));
        }
        last_at = Some(r.at_us);
        match r.kind {
            Kind::SessionStart => {
                if let Ok(s) = serde_json::from_str::<SessionStart>(&r.body) {
                    writeln!(
                        out,
                        "-- session {id}: {} on {} ({}) from {}, {}",
                        s.user,
                        s.target,
                        s.protocol,
                        s.client,
                        time(r.at_us)
                    )
                    .map_err(io)?;
                    prompt = format!("{}@{}=> ", s.user, s.target);
                }
            }
            Kind::Statement => {
                if let Ok(e) = serde_json::from_str::<StatementEvent>(&r.body) {
                    // A prepared statement runs at its executions: its
                    // preparation shows as a comment.
                    let lead = match e.origin.as_str() {
                        "parse" | "prepare" if e.refusal.is_none() => "-- prepared: ",
                        // The client's startup settings, applied by the
                        // gateway.
                        "startup" => "-- startup: ",
                        _ => &prompt,
                    };
                    writeln!(out, "{lead}{}", printable(&e.text).replace('\n', "\n   "))
                        .map_err(io)?;
                    if let Some(p) = &e.parameters {
                        writeln!(out, "-- parameters: {}", parameters(p)).map_err(io)?;
                    }
                    if let Some(why) = &e.refusal {
                        writeln!(out, "ERROR:  {}\n", printable(why)).map_err(io)?;
                    } else if e.masked && lead == prompt {
                        let which = if e.masked_columns.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", printable(&e.masked_columns.join(", ")))
                        };
                        writeln!(out, "-- (results masked for this identity{which})")
                            .map_err(io)?;
                    }
                }
            }
            Kind::Outcome => {
                if let Ok(o) = serde_json::from_str::<super::OutcomeEvent>(&r.body) {
                    match (o.tag, o.code) {
                        (Some(_), _) if o.result.is_some() => {
                            let result = o.result.as_ref().expect("checked");
                            writeln!(out, "{}", super::table::render(result, o.rows)).map_err(io)?
                        }
                        (Some(tag), _) if tag.starts_with("SELECT") || tag == "ROWS" => writeln!(
                            out,
                            "({} row{})\n",
                            o.rows,
                            if o.rows == 1 { "" } else { "s" }
                        )
                        .map_err(io)?,
                        (Some(tag), _) => writeln!(out, "{tag}\n").map_err(io)?,
                        (None, Some(code)) => {
                            writeln!(out, "ERROR:  {} ({code})\n", o.message.unwrap_or_default())
                                .map_err(io)?
                        }
                        _ => {}
                    }
                }
            }
            Kind::Approval => {
                if let Ok(a) = serde_json::from_str::<super::ApprovalEvent>(&r.body) {
                    writeln!(out, "-- {}", approval_line(&a)).map_err(io)?;
                }
            }
            Kind::Connected | Kind::Events | Kind::Definition => {}
            Kind::SessionEnd => {
                let reason = serde_json::from_str::<super::SessionEnd>(&r.body)
                    .map(|e| e.reason)
                    .unwrap_or_default();
                writeln!(out, "-- session ended ({reason}), {}", time(r.at_us)).map_err(io)?;
            }
        }
    }
    Ok(true)
}

/// One line for an approval event.
fn approval_line(a: &super::ApprovalEvent) -> String {
    let mut line = match a.state.as_str() {
        "pending" => format!(
            "held for approval #{} (rule {})",
            a.request,
            printable(&a.rule)
        ),
        state => format!("approval #{} {state}", a.request),
    };
    if !a.by.is_empty() {
        line.push_str(&format!(" by {}", printable(&a.by.join(", "))));
    }
    if let Some(r) = &a.reason {
        line.push_str(&format!(": {}", printable(r)));
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_sequences_in_texts_do_not_reach_the_terminal() {
        let shown = super::printable("SELECT 1 \u{1b}[2J\u{7} -- x\nFROM t");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
        assert!(
            shown.contains("\\u{1b}[2J") && shown.contains('\n'),
            "{shown}"
        );
    }
}
