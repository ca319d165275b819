//! Policy files: `[[rule]]`s that give verdicts to risk tags for
//! identities and targets, and `[defaults]`. Loading reports every problem
//! as `file:line: key: message`; unknown tags and keys are errors.
//!
//! A [`Table`] is the policy compiled for one identity on one target: a
//! verdict per tag, so judging a statement is a lookup per tag.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::mask::functions::MaskFunction;
use super::mask::rules::{column_pattern, MaskRule, OnUnknown};
use super::tags::{Tag, TagPattern, TagSet};
use crate::config::check::{ConfigError, Problems};

/// What happens to a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Forward it.
    Allow,
    /// Hold it for a human's approval.
    Review,
    /// Refuse it.
    Deny,
}

impl Verdict {
    fn parse(s: &str) -> Option<Verdict> {
        match s {
            "allow" => Some(Verdict::Allow),
            "review" => Some(Verdict::Review),
            "deny" => Some(Verdict::Deny),
            _ => None,
        }
    }

    /// The word rules use for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Review => "review",
            Verdict::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name (shown in refusals).
    pub name: String,
    /// Users it applies to.
    pub users: Vec<String>,
    /// Groups it applies to.
    pub groups: Vec<String>,
    /// Targets (`*`: all).
    pub targets: Vec<String>,
    /// Its entries: a tag pattern and the verdict it gives.
    pub entries: Vec<(TagPattern, Verdict)>,
    /// Where it was written (`file:line`).
    pub origin: String,
    /// What approving its `review` entries takes.
    pub review: crate::approvals::ReviewSettings,
}

impl Rule {
    /// Whether the rule applies to this identity on this target.
    pub fn matches(&self, user: &str, groups: &[String], target: &str) -> bool {
        let who =
            self.users.iter().any(|u| u == user) || self.groups.iter().any(|g| groups.contains(g));
        who && crate::config::check::target_listed(&self.targets, target)
    }

    /// The rule's verdict for a tag by its most specific entry, and the
    /// entry; `None` when the rule does not name the tag.
    pub fn verdict(&self, tag: Tag) -> Option<(Verdict, &TagPattern)> {
        let mut best: Option<(Verdict, &TagPattern)> = None;
        for (pattern, verdict) in &self.entries {
            if !pattern.covers(tag) {
                continue;
            }
            best = match best {
                Some((v, p)) if p.depth() > pattern.depth() => Some((v, p)),
                // Same depth named twice: the stricter one.
                Some((v, p)) if p.depth() == pattern.depth() && v >= *verdict => Some((v, p)),
                _ => Some((*verdict, pattern)),
            };
        }
        best
    }
}

/// `[defaults]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// For a tag no matching rule names.
    pub unmatched: Verdict,
    /// For a statement the parser cannot read.
    pub parse_error: Verdict,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            unmatched: Verdict::Deny,
            parse_error: Verdict::Deny,
        }
    }
}

/// All policy files, loaded.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Rules in file order.
    pub rules: Vec<Rule>,
    /// The defaults.
    pub defaults: Defaults,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// `[[mask]]` rules in file order.
    pub masks: Vec<MaskRule>,
    /// `[functions] read`: user functions a DBA declares reads
    /// (`schema.name` or `name`, lower case).
    pub read_functions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<RawRule>>,
    defaults: Option<Spanned<RawDefaults>>,
    #[serde(default, rename = "mask")]
    masks: Vec<Spanned<RawMask>>,
    functions: Option<RawFunctions>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunctions {
    read: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMask {
    name: Option<String>,
    columns: Spanned<Vec<String>>,
    function: Spanned<toml::Value>,
    #[serde(default)]
    except_users: Vec<String>,
    #[serde(default)]
    except_groups: Vec<String>,
    targets: Option<Vec<String>>,
    predicates: Option<Spanned<String>>,
    unknown: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    targets: Option<Spanned<Vec<String>>>,
    allow: Option<Spanned<Vec<String>>>,
    review: Option<Spanned<Vec<String>>>,
    deny: Option<Spanned<Vec<String>>>,
    /// Groups whose members approve what the rule reviews.
    approvers: Option<Spanned<Vec<String>>>,
    /// Distinct approvals a reviewed statement needs.
    approvals: Option<Spanned<i64>>,
    /// How long a reviewed statement waits (seconds, or "10m").
    review_timeout: Option<Spanned<toml::Value>>,
    /// How a reviewed statement waits (`wait`, `retry`).
    review_mode: Option<Spanned<String>>,
    /// `retry`: how long an approval waits for its retry.
    approval_valid_for: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    unmatched: Option<Spanned<String>>,
    parse_error: Option<Spanned<String>>,
}

impl Policy {
    /// Reads every file the patterns match (relative to `base`). A pattern
    /// that matches no file is an error: a typo must not silently leave a
    /// target without rules.
    pub fn load(patterns: &[String], base: &Path) -> Result<Policy, ConfigError> {
        let mut problems = Vec::new();
        let mut files = Vec::new();
        for pattern in patterns {
            let full = base.join(pattern);
            let full = full.to_string_lossy();
            match glob::glob(&full) {
                Ok(paths) => {
                    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                    found.sort();
                    if found.is_empty() {
                        problems.push(format!("policy files \"{pattern}\": no file matches"));
                    }
                    files.extend(found);
                }
                Err(e) => problems.push(format!("policy files \"{pattern}\": {e}")),
            }
        }
        let mut policy = Policy::default();
        let mut defaults_from: Option<PathBuf> = None;
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{}: cannot read: {e}", file.display()));
                    continue;
                }
            };
            let mut p = Problems::new(&file, &text);
            if let Some((rules, masks, defaults, reads)) = parse_file(&text, &mut p) {
                policy.rules.extend(rules);
                policy.masks.extend(masks);
                policy.read_functions.extend(reads);
                if let Some((defaults, span)) = defaults {
                    if let Some(earlier) = &defaults_from {
                        p.at(
                            span,
                            "defaults",
                            format!("already set in {}", earlier.display()),
                        );
                    } else {
                        policy.defaults = defaults;
                        defaults_from = Some(file.clone());
                    }
                }
            }
            problems.extend(p.into_list());
            policy.files.push(file);
        }
        let mut seen = std::collections::HashSet::new();
        for rule in &policy.rules {
            if !seen.insert(rule.name.as_str()) {
                problems.push(format!(
                    "{}: rule \"{}\" is defined twice",
                    rule.origin, rule.name
                ));
            }
        }
        if problems.is_empty() {
            Ok(policy)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// The policy compiled for one identity on one target.
    pub fn table(&self, user: &str, groups: &[String], target: &str) -> Table {
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.matches(user, groups, target))
            .collect();
        let mut verdicts = Vec::with_capacity(Tag::ALL.len());
        for &tag in Tag::ALL {
            let mut decided: Option<TagVerdict> = None;
            for rule in &rules {
                if let Some((verdict, pattern)) = rule.verdict(tag) {
                    if decided.as_ref().is_none_or(|d| verdict > d.verdict) {
                        decided = Some(TagVerdict {
                            verdict,
                            rule: Some(rule.name.as_str().into()),
                            entry: pattern.as_str().into(),
                        });
                    }
                }
            }
            verdicts.push(decided.unwrap_or(TagVerdict {
                verdict: self.defaults.unmatched,
                rule: None,
                entry: "defaults.unmatched".into(),
            }));
        }
        Table {
            verdicts,
            parse_error: self.defaults.parse_error,
            rules: rules.iter().map(|r| r.name.clone()).collect(),
            reviews: rules
                .iter()
                .filter(|r| !r.review.approvers.is_empty())
                .map(|r| (r.name.clone(), r.review.clone()))
                .collect(),
        }
    }
}

/// A file's rules, masks, `[defaults]` (with where they are written) and
/// declared read functions.
type ParsedFile = (
    Vec<Rule>,
    Vec<MaskRule>,
    Option<(Defaults, std::ops::Range<usize>)>,
    Vec<String>,
);

fn parse_file(text: &str, p: &mut Problems) -> Option<ParsedFile> {
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            p.at(e.span().unwrap_or(0..0), "toml", e.message().trim());
            return None;
        }
    };
    let mut rules = Vec::new();
    for spanned in raw.rules {
        let span = spanned.span();
        let r = spanned.into_inner();
        let name = r.name.get_ref().clone();
        let key = format!("rule \"{name}\"");
        let review = review_settings(&key, &r, p);
        if name.trim().is_empty() {
            p.at(r.name.span(), "rule.name", "must not be empty");
        }
        if r.users.is_empty() && r.groups.is_empty() {
            p.at(
                span.clone(),
                &key,
                "names no users and no groups: it would apply to nobody",
            );
        }
        let targets = match r.targets {
            Some(t) if t.get_ref().is_empty() => {
                p.at(t.span(), &format!("{key}.targets"), "is empty");
                Vec::new()
            }
            Some(t) => t.into_inner(),
            None => {
                p.at(
                    span.clone(),
                    &key,
                    "needs targets = [...] (\"*\" for every target)",
                );
                Vec::new()
            }
        };
        let mut entries = Vec::new();
        for (list, verdict) in [
            (&r.allow, Verdict::Allow),
            (&r.review, Verdict::Review),
            (&r.deny, Verdict::Deny),
        ] {
            let Some(list) = list else { continue };
            for tag in list.get_ref() {
                match TagPattern::parse(tag) {
                    Some(pattern) => {
                        if let Some((_, other)) =
                            entries.iter().find(|(p2, v): &&(TagPattern, Verdict)| {
                                p2 == &pattern && *v != verdict
                            })
                        {
                            p.at(
                                list.span(),
                                &format!("{key}.{verdict}"),
                                format!("\"{tag}\" is also in {other}"),
                            );
                        }
                        entries.push((pattern, verdict));
                    }
                    None => p.at(
                        list.span(),
                        &format!("{key}.{verdict}"),
                        format!("unknown tag \"{tag}\" (tags: {})", tag_roots().join(", ")),
                    ),
                }
            }
        }
        rules.push(Rule {
            name,
            users: r.users,
            groups: r.groups,
            targets,
            entries,
            origin: format!("{}:{}", p.file().display(), p.line(&span)),
            review,
        });
    }
    let defaults = raw.defaults.map(|d| {
        let span = d.span();
        let d = d.into_inner();
        let mut out = Defaults::default();
        if let Some(u) = d.unmatched {
            match Verdict::parse(u.get_ref()) {
                Some(v) => out.unmatched = v,
                None => p.at(
                    u.span(),
                    "defaults.unmatched",
                    "must be \"deny\", \"review\" or \"allow\"",
                ),
            }
        }
        if let Some(e) = d.parse_error {
            match Verdict::parse(e.get_ref()) {
                Some(Verdict::Allow) | None => p.at(
                    e.span(),
                    "defaults.parse_error",
                    "must be \"deny\" or \"review\": what the gateway cannot read is never allowed unseen",
                ),
                Some(v) => out.parse_error = v,
            }
        }
        (out, span)
    });
    let masks = raw
        .masks
        .into_iter()
        .enumerate()
        .filter_map(|(i, m)| mask_rule(i, m, p))
        .collect();
    let mut reads = Vec::new();
    if let Some(f) = raw.functions {
        for name in f.read.get_ref() {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() > 2 || parts.iter().any(|p| p.trim().is_empty() || p.contains('*')) {
                p.at(
                    f.read.span(),
                    "functions.read",
                    format!("\"{name}\" must be a function's name or schema.name (no patterns)"),
                );
                continue;
            }
            reads.push(name.to_lowercase());
        }
    }
    Some((rules, masks, defaults, reads))
}

/// A rule's review settings (`approvers`, `approvals`, `review_timeout`,
/// `review_mode`).
fn review_settings(key: &str, r: &RawRule, p: &mut Problems) -> crate::approvals::ReviewSettings {
    let mut out = crate::approvals::ReviewSettings::default();
    if let Some(a) = &r.approvers {
        if a.get_ref().iter().any(|g| g.trim().is_empty()) {
            p.at(
                a.span(),
                &format!("{key}.approvers"),
                "names an empty group",
            );
        }
        out.approvers = a.get_ref().clone();
    }
    if let Some(n) = &r.approvals {
        match u32::try_from(*n.get_ref()) {
            Ok(v @ 1..=10) => out.approvals = v,
            _ => p.at(n.span(), &format!("{key}.approvals"), "must be 1 to 10"),
        }
    }
    if let Some(t) = &r.review_timeout {
        match crate::approvals::settings::parse_duration(t.get_ref()) {
            Ok(d) => out.timeout = d,
            Err(why) => p.at(t.span(), &format!("{key}.review_timeout"), why),
        }
    }
    if let Some(m) = &r.review_mode {
        match m.get_ref().as_str() {
            "wait" => {}
            "retry" => out.mode = crate::approvals::settings::Mode::Retry,
            _ => p.at(
                m.span(),
                &format!("{key}.review_mode"),
                "must be \"wait\" or \"retry\"",
            ),
        }
    }
    if let Some(t) = &r.approval_valid_for {
        match crate::approvals::settings::parse_duration(t.get_ref()) {
            Ok(d) => out.valid_for = d,
            Err(why) => p.at(t.span(), &format!("{key}.approval_valid_for"), why),
        }
    }
    let reviews = r.review.as_ref().is_some_and(|l| !l.get_ref().is_empty());
    let configured = r.approvers.is_some()
        || r.approvals.is_some()
        || r.review_timeout.is_some()
        || r.review_mode.is_some()
        || r.approval_valid_for.is_some();
    if configured && !reviews {
        p.at(
            r.name.span(),
            key,
            "sets approvers or review keys but reviews nothing (review = [...])",
        );
    }
    out
}

fn mask_rule(index: usize, spanned: Spanned<RawMask>, p: &mut Problems) -> Option<MaskRule> {
    let span = spanned.span();
    let m = spanned.into_inner();
    let name = m
        .name
        .clone()
        .unwrap_or_else(|| format!("mask #{} ({})", index + 1, m.columns.get_ref().join(", ")));
    let key = format!("mask \"{name}\"");
    let mut ok = true;
    let mut columns = Vec::new();
    if m.columns.get_ref().is_empty() {
        p.at(m.columns.span(), &format!("{key}.columns"), "is empty");
        ok = false;
    }
    for c in m.columns.get_ref() {
        match column_pattern(c) {
            Some(pat) => columns.push(pat),
            None => {
                p.at(
                    m.columns.span(),
                    &format!("{key}.columns"),
                    format!("\"{c}\" is not schema.table.column (\"*\" matches any part)"),
                );
                ok = false;
            }
        }
    }
    let function = match MaskFunction::parse(m.function.get_ref()) {
        Ok(f) => Some(f),
        Err(e) => {
            p.at(m.function.span(), &format!("{key}.function"), e);
            None
        }
    };
    let predicates_allowed = match m.predicates.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("deny") => false,
        Some("allow") => true,
        Some(_) => {
            let s = m.predicates.as_ref().expect("matched Some");
            p.at(
                s.span(),
                &format!("{key}.predicates"),
                "must be \"allow\" or \"deny\"",
            );
            ok = false;
            false
        }
    };
    let on_unknown = match m.unknown.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("refuse") => OnUnknown::Refuse,
        Some("redact") => OnUnknown::Redact,
        Some(_) => {
            let s = m.unknown.as_ref().expect("matched Some");
            p.at(
                s.span(),
                &format!("{key}.unknown"),
                "must be \"refuse\" or \"redact\"",
            );
            ok = false;
            OnUnknown::Refuse
        }
    };
    let origin = format!("{}:{}", p.file().display(), p.line(&span));
    (ok && function.is_some()).then(|| MaskRule {
        name,
        columns,
        function: function.expect("checked"),
        except_users: m.except_users,
        except_groups: m.except_groups,
        targets: m.targets.unwrap_or_else(|| vec!["*".to_owned()]),
        predicates_allowed,
        on_unknown,
        origin,
    })
}

/// The top of the tag tree, for error messages.
fn tag_roots() -> Vec<&'static str> {
    let mut roots: Vec<&str> = Tag::ALL
        .iter()
        .map(|t| t.name().split('.').next().unwrap_or(""))
        .collect();
    roots.dedup();
    roots
}

/// The verdict for one tag, and who gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVerdict {
    /// The verdict.
    pub verdict: Verdict,
    /// The rule that gave it (`None`: the default for unmatched tags).
    /// Shared, not copied: every judged statement's decision holds one.
    pub rule: Option<Arc<str>>,
    /// The entry that decided (`ddl.drop`), or `defaults.unmatched`.
    pub entry: Arc<str>,
}

/// The decision for statements that read account credentials, whatever
/// the rules (and without any): the gateway's own account is among those
/// whose credentials they read, and secrets never leave the gateway.
pub fn secrets_refusal() -> Decision {
    Decision {
        verdict: Verdict::Deny,
        deciding: Some((
            Tag::AdminSecrets,
            TagVerdict {
                verdict: Verdict::Deny,
                rule: Some("sqlgate: account credentials never leave the gateway".into()),
                entry: Tag::AdminSecrets.name().into(),
            },
        )),
    }
}

/// The policy for one identity on one target.
#[derive(Debug, Clone)]
pub struct Table {
    verdicts: Vec<TagVerdict>,
    parse_error: Verdict,
    /// Names of the rules that match.
    pub rules: Vec<String>,
    /// The review settings of matching rules that name approvers.
    reviews: Vec<(String, crate::approvals::ReviewSettings)>,
}

/// A statement's verdict and what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// The tag that decided it and the verdict given to it (`None` when
    /// the statement has no tags, or could not be read).
    pub deciding: Option<(Tag, TagVerdict)>,
}

impl Table {
    /// What approving a reviewed statement takes, when the rule that
    /// reviews it names approvers (otherwise nobody can approve it: it is
    /// refused).
    pub fn review(&self, decision: &Decision) -> Option<(&str, &crate::approvals::ReviewSettings)> {
        if decision.verdict != Verdict::Review {
            return None;
        }
        let rule = decision.deciding.as_ref()?.1.rule.as_deref()?;
        self.reviews
            .iter()
            .find(|(name, _)| name == rule)
            .map(|(name, settings)| (name.as_str(), settings))
    }

    /// The verdict for one tag.
    pub fn tag(&self, tag: Tag) -> &TagVerdict {
        &self.verdicts[tag as usize]
    }

    /// The strictest verdict over a statement's tags. `readable`: the
    /// parser read the statement (otherwise `[defaults] parse_error`).
    pub fn decide(&self, tags: TagSet, readable: bool) -> Decision {
        if !readable {
            return Decision {
                verdict: self.parse_error,
                deciding: None,
            };
        }
        if tags.contains(Tag::AdminSecrets) {
            return secrets_refusal();
        }
        let mut out = Decision {
            verdict: Verdict::Allow,
            deciding: None,
        };
        for tag in tags.iter() {
            let tv = self.tag(tag);
            if out.deciding.is_none() || tv.verdict > out.verdict {
                out.verdict = tv.verdict;
                out.deciding = Some((tag, tv.clone()));
            }
        }
        out
    }

    /// Whether nothing beyond `read`, `tx` and `session` may run without
    /// a review: then server sessions are read-only, a backstop behind
    /// the classifier.
    ///
    /// `holds`: reviewed statements are held for approval, so a tag a rule
    /// with approvers reviews can run too (once approved).
    pub fn read_only(&self, holds: bool) -> bool {
        let may_run = |tv: &TagVerdict| {
            tv.verdict == Verdict::Allow
                || (holds
                    && tv.verdict == Verdict::Review
                    && tv
                        .rule
                        .as_ref()
                        .is_some_and(|r| self.reviews.iter().any(|(name, _)| **name == **r)))
        };
        Tag::ALL
            .iter()
            .filter(|t| !matches!(t, Tag::Read | Tag::Tx | Tag::Session))
            .all(|t| !may_run(self.tag(*t)))
            && self.parse_error != Verdict::Allow
    }
}

#[cfg(test)]
mod tests;
