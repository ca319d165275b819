//! `sqlgate explain`: how the policy judges a text for an identity on a
//! target, statement by statement, without touching any database.

use serde_json::{json, Value};

use std::sync::Arc;

use super::classify::{classify_text, Reading};
use super::engine::{Engine, RefusedBy, SessionPolicy};
use super::mask::catalog::CatalogSnapshot;
use super::mask::result::{for_derived, StatementMasks};
use super::mask::rules::ColumnPlan;
use super::parse::SqlDialect;
use super::risk::Prepared;
use super::rules::{Policy, Verdict};
use super::tags::Tag;

/// The target's catalog for the masking plan: read, or why not.
pub type CatalogRead<'a> = Result<&'a CatalogSnapshot, String>;

/// Explains `sql` for `user` (in `groups`) on `target` (`database`: a
/// MySQL target's, which statements may not reach beyond). `policy` is
/// `None` when none is configured; `catalog` is the target's catalog when
/// masking rules apply to the identity there. The verdicts are the
/// gateway's own: the text is judged by a session's judge
/// (`SessionPolicy::judge_statements`), which here goes on past a
/// refusal to show every statement.
#[allow(clippy::too_many_arguments)]
pub fn explain(
    policy: Option<&Policy>,
    dialect: SqlDialect,
    user: &str,
    groups: &[String],
    target: &str,
    database: Option<&str>,
    sql: &str,
    catalog: Option<CatalogRead>,
) -> Value {
    let table = policy.map(|p| p.table(user, groups, target));
    let engine = Arc::new(Engine::new(policy.cloned(), 64));
    if let Some(Ok(snapshot)) = &catalog {
        engine.set_catalog(target, (*snapshot).clone());
    }
    let mut session = SessionPolicy::new(engine, dialect, user, groups, target);
    if let Some(db) = database {
        session = session.confined_to(db);
    }
    let masking = session.masking();
    let outcomes = session.judge_statements(sql.as_bytes(), false);
    let classified = classify_text(dialect, sql.as_bytes());
    let statements: Vec<Value> = classified
        .iter()
        .zip(&outcomes)
        .map(|(s, outcome)| {
            let tags = match outcome {
                Ok(j) => j.tags,
                Err(_) => {
                    let mut tags = session.tags_of(s);
                    if matches!(s.risk.prepared, Some(Prepared::Execute(_))) {
                        tags.insert(Tag::Unknown);
                    }
                    tags
                }
            };
            let note = match &s.risk.prepared {
                Some(Prepared::Execute(name)) => Some(format!(
                    "EXECUTE {name}: in a session, the tags of what PREPARE {name} prepared"
                )),
                _ => None,
            };
            let reading = match &s.reading {
                Reading::Parsed(_) => "parsed".to_owned(),
                Reading::Keywords => "recognised by its leading keywords".to_owned(),
                Reading::Unreadable(why) => format!("unreadable: {why}"),
            };
            let per_tag: Vec<Value> = tags
                .iter()
                .map(|t| match &table {
                    Some(table) => {
                        let tv = table.tag(t);
                        json!({
                            "tag": t.name(),
                            "verdict": tv.verdict.as_str(),
                            "rule": tv.rule.as_deref(),
                            "entry": &*tv.entry,
                        })
                    }
                    None => json!({ "tag": t.name(), "verdict": "allow", "rule": null,
                                    "entry": "no policy configured" }),
                })
                .collect();
            let (verdict, refusal) = match outcome {
                Ok(_) => (Verdict::Allow, Value::Null),
                Err(r) => (
                    r.verdict,
                    json!({ "by": format!("{:?}", r.by).to_lowercase(), "message": r.message,
                            "hint": r.hint }),
                ),
            };
            let masking_json = match outcome {
                _ if !masking => Value::Null,
                Ok(j) => masking_plan(j.masks.as_ref()),
                Err(r) if r.by == RefusedBy::Masking => {
                    json!({ "refused": r.message, "hint": r.hint })
                }
                Err(_) => Value::Null,
            };
            json!({
                "statement": s.excerpt(sql),
                "position": s.start + 1,
                "reading": reading,
                "tags": tags.iter().map(Tag::name).collect::<Vec<_>>(),
                "verdict": verdict.as_str(),
                "refusal": refusal,
                "by_tag": per_tag,
                "note": note,
                "masking": masking_json,
            })
        })
        .collect();
    // The text's verdict is its first refused statement's, as the
    // gateway refuses the whole text there.
    let verdict = outcomes
        .iter()
        .find_map(|o| o.as_ref().err().map(|r| r.verdict))
        .unwrap_or(Verdict::Allow);
    let catalog_error = match &catalog {
        Some(Err(e)) => Some(format!("the target's catalog could not be read ({e})")),
        _ => None,
    };
    json!({
        "user": user,
        "groups": groups,
        "target": target,
        "dialect": match dialect { SqlDialect::Postgres => "postgres", SqlDialect::Mysql => "mysql" },
        "policy": policy.is_some(),
        "matching_rules": table.as_ref().map(|t| t.rules.clone()).unwrap_or_default(),
        "read_only_session": table.as_ref().is_some_and(|t| t.read_only(false)),
        "masking_rules": session.mask_rule_names(),
        "catalog_error": catalog_error,
        "verdict": verdict.as_str(),
        "statements": statements,
    })
}

/// The masking plan of one allowed statement: each output column masked
/// by which rule and function, and why.
fn masking_plan(masks: Option<&StatementMasks>) -> Value {
    let Some(m) = masks else {
        return Value::Null;
    };
    if m.named.is_some() {
        return json!({ "note": "a plan or a list of objects: columns that quote SQL have their literals replaced" });
    }
    let Some(plan) = &m.plan else {
        return if m.reads_masked {
            json!({ "note": "result columns without an unmasked table column behind them are redacted" })
        } else {
            json!({ "note": "reads no masked column" })
        };
    };
    if plan.iter().all(|c| *c == ColumnPlan::Clear) && !m.reads_masked {
        return json!({ "note": "reads no masked column" });
    }
    let columns: Vec<Value> = m
        .names
        .iter()
        .zip(plan)
        .map(|(name, p)| match p {
            ColumnPlan::Clear => json!({ "column": name, "masked": false }),
            ColumnPlan::Masked {
                rule,
                derived,
                sources,
            } => {
                let r = &m.rules[*rule];
                let from = sources
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let (function, why) = if *derived {
                    (for_derived(&r.function), format!("computed from {from}"))
                } else {
                    (r.function.clone(), format!("a plain reference to {from}"))
                };
                json!({ "column": name, "masked": true, "rule": r.name,
                        "function": function.describe(), "why": why })
            }
            ColumnPlan::RedactUnknown { why } => json!({ "column": name, "masked": true,
                "rule": null, "function": "redact", "why": format!("origin unknown ({why})") }),
        })
        .collect();
    json!({ "columns": columns })
}

/// The explanation as text for people.
pub fn render(e: &Value) -> String {
    let mut out = String::new();
    let rules: Vec<&str> = e["matching_rules"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(&format!(
        "user {} on target {} ({}): matching rules: {}{}\n",
        e["user"].as_str().unwrap_or(""),
        e["target"].as_str().unwrap_or(""),
        e["dialect"].as_str().unwrap_or(""),
        if rules.is_empty() {
            "none".to_owned()
        } else {
            rules.join(", ")
        },
        if e["read_only_session"].as_bool() == Some(true) {
            "; server sessions are read-only"
        } else {
            ""
        }
    ));
    if e["policy"].as_bool() != Some(true) {
        out.push_str("no [policy] configured: every statement is allowed\n");
    }
    if let Some(error) = e["catalog_error"].as_str() {
        out.push_str(&format!("masking: {error}\n"));
    }
    for (i, s) in e["statements"].as_array().into_iter().flatten().enumerate() {
        out.push_str(&format!(
            "\n{}. {}\n   position {}, {}\n   tags: {}\n",
            i + 1,
            s["statement"].as_str().unwrap_or(""),
            s["position"],
            s["reading"].as_str().unwrap_or(""),
            s["tags"]
                .as_array()
                .map(|t| t
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
        ));
        for t in s["by_tag"].as_array().into_iter().flatten() {
            let by = match t["rule"].as_str() {
                Some(rule) => format!("rule \"{rule}\" ({})", t["entry"].as_str().unwrap_or("")),
                None => t["entry"].as_str().unwrap_or("").to_owned(),
            };
            out.push_str(&format!(
                "   {:<18} {:<7} by {by}\n",
                t["tag"].as_str().unwrap_or(""),
                t["verdict"].as_str().unwrap_or(""),
            ));
        }
        if let Some(note) = s["note"].as_str() {
            out.push_str(&format!("   note: {note}\n"));
        }
        if let Some(message) = s["refusal"]["message"].as_str() {
            out.push_str(&format!("   refused: {message}\n"));
        }
        let m = &s["masking"];
        if let Some(note) = m["note"].as_str() {
            out.push_str(&format!("   masking: {note}\n"));
        }
        if let Some(refused) = m["refused"].as_str() {
            out.push_str(&format!("   masking: refused: {refused}\n"));
        }
        if let Some(cols) = m["columns"].as_array() {
            out.push_str("   masking plan:\n");
            for c in cols {
                let name = c["column"].as_str().unwrap_or("");
                if c["masked"].as_bool() == Some(true) {
                    let rule = c["rule"]
                        .as_str()
                        .map_or("(no rule)".to_owned(), |r| format!("rule \"{r}\""));
                    out.push_str(&format!(
                        "     {name:<18} masked by {rule} with {}: {}\n",
                        c["function"].as_str().unwrap_or(""),
                        c["why"].as_str().unwrap_or("")
                    ));
                } else {
                    out.push_str(&format!("     {name:<18} clear\n"));
                }
            }
        }
        out.push_str(&format!(
            "   verdict: {}\n",
            s["verdict"].as_str().unwrap_or("")
        ));
    }
    out.push_str(&format!(
        "\nverdict: {}\n",
        e["verdict"].as_str().unwrap_or("")
    ));
    out
}
