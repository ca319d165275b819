//! `sqlgate explain`: how the policy judges a text for an identity on a
//! target, statement by statement, without touching any database.

use serde_json::{json, Value};

use super::classify::{classify_text, Reading, StatementRisk};
use super::mask::catalog::CatalogSnapshot;
use super::mask::guard;
use super::mask::result::for_derived;
use super::mask::rules::{ColumnPlan, MaskRule};
use super::parse::SqlDialect;
use super::risk::Prepared;
use super::rules::{Policy, Verdict};
use super::tags::Tag;
use super::tags::TagSet;

/// The target's catalog for the masking plan: read, or why not.
pub type CatalogRead<'a> = Result<&'a CatalogSnapshot, String>;

/// Explains `sql` for `user` (in `groups`) on `target`. `policy` is
/// `None` when none is configured; `catalog` is the target's catalog when
/// masking rules apply to the identity there.
pub fn explain(
    policy: Option<&Policy>,
    dialect: SqlDialect,
    user: &str,
    groups: &[String],
    target: &str,
    sql: &str,
    catalog: Option<CatalogRead>,
) -> Value {
    let table = policy.map(|p| p.table(user, groups, target));
    let masks: Vec<&MaskRule> = policy
        .map(|p| {
            p.masks
                .iter()
                .filter(|m| m.applies(user, groups, target))
                .collect()
        })
        .unwrap_or_default();
    let statements: Vec<Value> = classify_text(dialect, sql.as_bytes())
        .iter()
        .map(|s| {
            let readable = !matches!(s.reading, Reading::Unreadable(_));
            let mut tags = s.risk.tags;
            let mut note = None;
            if let Some(Prepared::Execute(name)) = &s.risk.prepared {
                // Outside a session nothing is prepared: what the gateway
                // does with an EXECUTE of a name it has not seen.
                tags.insert(Tag::Unknown);
                note = Some(format!(
                    "EXECUTE {name}: in a session, the tags of what PREPARE {name} prepared"
                ));
            }
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
                            "rule": tv.rule,
                            "entry": tv.entry,
                        })
                    }
                    None => json!({ "tag": t.name(), "verdict": "allow", "rule": null,
                                    "entry": "no policy configured" }),
                })
                .collect();
            let verdict = table
                .as_ref()
                .map_or(Verdict::Allow, |t| t.decide(tags, readable).verdict);
            json!({
                "statement": s.excerpt(sql),
                "position": s.start + 1,
                "reading": reading,
                "tags": tags.iter().map(Tag::name).collect::<Vec<_>>(),
                "verdict": verdict.as_str(),
                "by_tag": per_tag,
                "note": note,
                "masking": masking_plan(s, tags, dialect, &masks, catalog.as_ref()),
            })
        })
        .collect();
    let verdict = statements
        .iter()
        .filter_map(|s| s["verdict"].as_str())
        .map(|v| match v {
            "deny" => Verdict::Deny,
            "review" => Verdict::Review,
            _ => Verdict::Allow,
        })
        .max()
        .unwrap_or(Verdict::Allow);
    json!({
        "user": user,
        "groups": groups,
        "target": target,
        "dialect": match dialect { SqlDialect::Postgres => "postgres", SqlDialect::Mysql => "mysql" },
        "policy": policy.is_some(),
        "matching_rules": table.as_ref().map(|t| t.rules.clone()).unwrap_or_default(),
        "read_only_session": table.as_ref().is_some_and(|t| t.read_only()),
        "masking_rules": masks.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        "verdict": verdict.as_str(),
        "statements": statements,
    })
}

/// The masking plan of one statement: each output column masked by which
/// rule and function, and why — or why masking refuses the statement.
fn masking_plan(
    s: &StatementRisk,
    tags: TagSet,
    dialect: SqlDialect,
    masks: &[&MaskRule],
    catalog: Option<&CatalogRead>,
) -> Value {
    if masks.is_empty() {
        return Value::Null;
    }
    let catalog = match catalog {
        Some(Ok(c)) => *c,
        Some(Err(e)) => {
            return json!({ "note": format!("no plan: the target's catalog could not be read ({e})") })
        }
        None => return json!({ "note": "no plan: the target's catalog was not read" }),
    };
    let Reading::Parsed(stmt) = &s.reading else {
        return json!({ "note": "not parsed: result columns without a table column behind them are redacted" });
    };
    let opaque = tags.iter().any(|t| t.name().starts_with("code."));
    match guard::check(stmt, dialect, catalog, masks, opaque) {
        Err(r) => json!({ "refused": r.message, "hint": r.hint }),
        Ok(guard::Checked { plan: None, .. }) => json!({ "note": "reads no masked column" }),
        Ok(guard::Checked {
            plan: Some(plan),
            names,
            ..
        }) => {
            let columns: Vec<Value> = names
                .iter()
                .zip(&plan)
                .map(|(name, p)| match p {
                    ColumnPlan::Clear => json!({ "column": name, "masked": false }),
                    ColumnPlan::Masked {
                        rule,
                        derived,
                        sources,
                    } => {
                        let r = masks[*rule];
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
    }
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
