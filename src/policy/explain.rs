//! `sqlgate explain`: how the policy judges a text for an identity on a
//! target, statement by statement, without touching any database.

use serde_json::{json, Value};

use super::classify::{classify_text, Reading};
use super::parse::SqlDialect;
use super::risk::Prepared;
use super::rules::{Policy, Verdict};
use super::tags::Tag;

/// Explains `sql` for `user` (in `groups`) on `target`. `policy` is
/// `None` when none is configured.
pub fn explain(
    policy: Option<&Policy>,
    dialect: SqlDialect,
    user: &str,
    groups: &[String],
    target: &str,
    sql: &str,
) -> Value {
    let table = policy.map(|p| p.table(user, groups, target));
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
        "verdict": verdict.as_str(),
        "statements": statements,
    })
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
