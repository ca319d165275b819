//! Plans and column defaults, which are not SQL texts whole: a plan's
//! lines carry expressions (literals out, numbers too) beside costs and
//! row counts (kept); JSON plans are walked string by string; YAML and
//! XML list items are expressions. It must never keep a string literal.

use super::{scrub_literals, scrub_strings, NUMBER_PLACEHOLDER};
use crate::policy::parse::SqlDialect;

/// Labels of plan lines whose text is an expression (its numbers may be
/// a view's literals); other lines keep their numbers (costs, rows).
const PLAN_EXPRESSIONS: &[&str] = &[
    "filter",
    "join filter",
    "one-time filter",
    "conflict filter",
    "index cond",
    "recheck cond",
    "hash cond",
    "merge cond",
    "tid cond",
    "run condition",
    "output",
    "sort key",
    "presorted key",
    "group key",
    "hash key",
    "cache key",
    "order by",
    "function call",
    "table function call",
    "attached_condition",
];

/// A plan with its values out: JSON plans (PostgreSQL's and MariaDB's)
/// lose every literal inside their strings; text, YAML and XML plans
/// lose strings everywhere and numbers inside expressions.
pub fn scrub_plan(dialect: SqlDialect, text: &str) -> String {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) {
            scrub_json(dialect, &mut value);
            if let Ok(s) = serde_json::to_string_pretty(&value) {
                return s;
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        out.push_str(&scrub_plan_line(dialect, line));
    }
    out
}

fn scrub_json(dialect: SqlDialect, v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => *s = scrub_literals(dialect, s),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|v| scrub_json(dialect, v)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|v| scrub_json(dialect, v)),
        _ => {}
    }
}

fn scrub_plan_line(dialect: SqlDialect, line: &str) -> String {
    let body = line.trim_start_matches([' ', '\t', '-', '>']);
    let lead = &line[..line.len() - body.len()];
    // `Label: expression` (text, YAML) or `<Label>expression` (XML).
    let split = if let Some(rest) = body.strip_prefix('<') {
        rest.find('>').map(|i| (&rest[..i], i + 2))
    } else {
        body.find(": ").map(|i| (&body[..i], i + 2))
    };
    // An item of a list (`Output:` in YAML, `<Item>` in XML): an
    // expression.
    if lead.ends_with("- ") || body.starts_with("<Item>") {
        return format!("{lead}{}", scrub_quoted(dialect, body, true));
    }
    if let Some((label, at)) = split {
        let label = label
            .trim_matches('"')
            .replace('-', " ")
            .to_ascii_lowercase();
        if PLAN_EXPRESSIONS.contains(&label.as_str()) {
            let rest = &body[at..];
            let inner = rest.trim_end();
            // A YAML double-quoted value: its content is the expression.
            let scrubbed = match inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
                Some(expr) => format!(
                    "\"{}\"{}",
                    scrub_literals(dialect, expr),
                    &rest[inner.len()..]
                ),
                None => scrub_literals(dialect, rest),
            };
            return format!("{lead}{}{scrubbed}", &body[..at]);
        }
    }
    scrub_quoted(dialect, line, false)
}

/// A plan line whose double-quoted parts are YAML strings holding
/// expressions: their content loses its literals (numbers too when
/// `numbers`); the rest loses its strings.
fn scrub_quoted(dialect: SqlDialect, line: &str, numbers: bool) -> String {
    let outside = |t: &str| {
        if numbers {
            scrub_literals(dialect, t)
        } else {
            scrub_strings(dialect, t)
        }
    };
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find('"') {
        out.push_str(&outside(&rest[..start]));
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let (inner, next) = match end {
            Some(i) => (&after[..i], &after[i + 1..]),
            None => (after, ""),
        };
        out.push('"');
        out.push_str(&scrub_literals(dialect, inner));
        if end.is_some() {
            out.push('"');
        }
        rest = next;
    }
    out.push_str(&outside(rest));
    out
}

/// A column default as MySQL's `SHOW COLUMNS` prints it: a bare value
/// (`active`, `5`) becomes `?`; an expression (`current_timestamp()`,
/// `nextval(`s`)`) loses its literals.
pub fn scrub_default(dialect: SqlDialect, value: &str) -> String {
    let name_len = value
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let call = name_len > 0
        && !value.as_bytes()[0].is_ascii_digit()
        && value[name_len..].starts_with('(')
        && value.ends_with(')');
    if call {
        scrub_literals(dialect, value)
    } else {
        NUMBER_PLACEHOLDER.to_owned()
    }
}
