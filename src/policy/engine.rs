//! The policy at work: a shared [`Engine`] (the loaded policy, swapped on
//! reload, and a bounded cache of classified statement texts) and one
//! [`SessionPolicy`] per session (its identity's verdict table and its
//! SQL-level prepared statements).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, RwLock};

use std::collections::HashSet;

use super::classify::{Reading, StatementRisk};
use super::mask::catalog::CatalogSnapshot;
use super::mask::functions::HashKey;
use super::mask::result::StatementMasks;
use super::mask::rules::MaskRule;
use super::parse::SqlDialect;
use super::risk::Prepared;
use super::rules::{Decision, Policy, Table, Verdict};
use super::tags::{Tag, TagSet};

mod cache;
mod masks;
mod memo;
pub use memo::TextShape;

pub use cache::CacheCounts;
use cache::Classified;

/// The loaded policy and its version.
#[derive(Debug)]
struct Loaded {
    /// `None`: no `[policy]` configured; statements are classified and
    /// logged, and all allowed.
    policy: Option<Policy>,
    generation: u64,
}

/// What every session shares.
#[derive(Debug)]
pub struct Engine {
    loaded: RwLock<Arc<Loaded>>,
    cache: [Mutex<Classified>; 2],
    /// Catalog snapshots of targets with masking rules.
    catalogs: RwLock<HashMap<String, Arc<CatalogSnapshot>>>,
    /// Targets whose catalog should be read (again).
    stale: Mutex<HashSet<String>>,
    /// Wakes the catalog reader.
    catalog_wanted: tokio::sync::Notify,
    /// The key of the `hash` masking function.
    hash_key: HashKey,
    /// The loaded policy's generation, read without the lock (a session
    /// asks at every text whether its verdict table is current).
    generation: std::sync::atomic::AtomicU64,
}

impl Engine {
    /// An engine with this policy (`None`: none configured) and a cache of
    /// `cache_entries` texts per dialect.
    pub fn new(policy: Option<Policy>, cache_entries: usize) -> Self {
        let cap = NonZeroUsize::new(cache_entries.max(1)).expect("max(1)");
        Engine {
            loaded: RwLock::new(Arc::new(Loaded {
                policy,
                generation: 0,
            })),
            cache: [(); 2].map(|()| Mutex::new(Classified::new(cap))),
            catalogs: RwLock::new(HashMap::new()),
            stale: Mutex::new(HashSet::new()),
            catalog_wanted: tokio::sync::Notify::new(),
            hash_key: HashKey::new(rand::random::<[u8; 32]>().as_slice()),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Uses this key for the `hash` masking function (instead of a random
    /// key per process).
    pub fn with_hash_key(mut self, key: &[u8]) -> Self {
        self.hash_key = HashKey::new(key);
        self
    }

    /// The masking rules of the current policy.
    pub fn masks(&self) -> Vec<MaskRule> {
        self.current()
            .policy
            .as_ref()
            .map(|p| p.masks.clone())
            .unwrap_or_default()
    }

    /// Installs a target's catalog snapshot.
    pub fn set_catalog(&self, target: &str, snapshot: CatalogSnapshot) {
        self.catalogs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.to_owned(), Arc::new(snapshot));
    }

    /// A target's catalog snapshot, if read.
    pub fn catalog(&self, target: &str) -> Option<Arc<CatalogSnapshot>> {
        self.catalogs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(target)
            .cloned()
    }

    /// Asks the catalog reader to read a target's catalog (again).
    pub fn want_catalog(&self, target: &str) {
        self.stale
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(target.to_owned());
        self.catalog_wanted.notify_one();
    }

    /// Waits until a catalog is wanted; the targets.
    pub async fn wanted_catalogs(&self) -> Vec<String> {
        loop {
            let wanted: Vec<String> = self
                .stale
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .collect();
            if !wanted.is_empty() {
                return wanted;
            }
            self.catalog_wanted.notified().await;
        }
    }

    /// Installs a newly loaded policy. Sessions pick it up at their next
    /// statement; the text cache holds no verdicts and stays.
    pub fn replace(&self, policy: Option<Policy>) {
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        let generation = loaded.generation + 1;
        *loaded = Arc::new(Loaded { policy, generation });
        self.generation
            .store(generation, std::sync::atomic::Ordering::Release);
    }

    /// The loaded policy's generation.
    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether any policy is configured.
    pub fn has_policy(&self) -> bool {
        self.current().policy.is_some()
    }

    /// The verdict table of an identity on a target under the current
    /// policy (`None`: no policy configured).
    pub fn table(&self, user: &str, groups: &[String], target: &str) -> Option<Table> {
        self.current()
            .policy
            .as_ref()
            .map(|p| p.table(user, groups, target))
    }
}

impl Drop for SessionPolicy {
    fn drop(&mut self) {
        let uncounted = std::mem::take(&mut self.shapes.uncounted);
        if uncounted != [0, 0] {
            self.engine.count_recalled(self.dialect, uncounted);
        }
        if self.ddl_pending {
            self.engine.want_catalog(&self.target);
        }
    }
}

/// A refused statement, in words a person and an agent can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Deny or review.
    pub verdict: Verdict,
    /// What refused it.
    pub by: RefusedBy,
    /// One line: what was refused and by what.
    pub message: String,
    /// The statement and its tags.
    pub detail: String,
    /// What to do about it.
    pub hint: String,
    /// 1-based character position of the statement in the text.
    pub position: usize,
    /// The rule that decided, when a rule did (for metrics and logs).
    pub rule: Option<String>,
    /// The statement's tags, when it was read.
    pub tags: TagSet,
}

/// What refused a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBy {
    /// The verdict of its tags.
    Policy,
    /// It names a database outside its MySQL target.
    Reach,
    /// Masking cannot follow it (or what it would return or store).
    Masking,
    /// It had to be recorded before running and could not be.
    Recording,
}

/// One statement's judgement, for logs and `sqlgate explain`.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The statement as classified.
    pub statement: StatementRisk,
    /// Its tags (for EXECUTE: those of what it runs).
    pub tags: TagSet,
    /// The verdict and what decided it.
    pub decision: Decision,
    /// In a masking session: how its results are masked.
    pub masks: Option<StatementMasks>,
}

/// One session's view of the policy.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    engine: Arc<Engine>,
    dialect: SqlDialect,
    user: String,
    groups: Vec<String>,
    target: String,
    table: Option<(u64, Arc<Table>)>,
    /// The masking rules that apply to this identity on this target.
    masks: Arc<Vec<MaskRule>>,
    /// Some masking rule covers this target (so its catalog matters).
    masked_target: bool,
    /// This session ran DDL: the catalog is read again at its next
    /// statement (the DDL has completed by then) or when it ends.
    ddl_pending: bool,
    /// SQL-level prepared statements: name → tags of what they run.
    prepared: HashMap<String, TagSet>,
    /// A MySQL target's database: statements reach no other
    /// (`policy::reach`).
    database: Option<String>,
    /// User functions the policy declares reads (`[functions] read`).
    read_functions: Arc<Vec<String>>,
    /// PostgreSQL: the search paths this masking session set, under
    /// which its unqualified names may resolve (`mask::catalog::
    /// SessionCatalog`).
    search_paths: Vec<Vec<String>>,
    /// Reviewed statements whose rule names approvers are judged (their
    /// verdict `review`) instead of refused: the session holds them for
    /// approval.
    holds: bool,
    /// The shapes this session sent last (`memo.rs`).
    shapes: memo::ShapeMemo,
}

/// Distinct search paths one masking session may set.
const MAX_SEARCH_PATHS: usize = 16;

impl SessionPolicy {
    /// The policy of a session of this identity on this target.
    pub fn new(
        engine: Arc<Engine>,
        dialect: SqlDialect,
        user: &str,
        groups: &[String],
        target: &str,
    ) -> Self {
        SessionPolicy {
            engine,
            dialect,
            user: user.to_owned(),
            groups: groups.to_vec(),
            target: target.to_owned(),
            table: None,
            masks: Arc::new(Vec::new()),
            masked_target: false,
            ddl_pending: false,
            prepared: HashMap::new(),
            database: None,
            read_functions: Arc::new(Vec::new()),
            search_paths: Vec::new(),
            holds: false,
            shapes: memo::ShapeMemo::default(),
        }
    }

    /// A copy of this session's state that judges a text elsewhere (a
    /// long text, on a blocking thread: `policy::offload`); this one is
    /// left as it was, for the case the copy never comes back. Hits not
    /// yet counted stay here: a copy dropped unused counts nothing twice.
    pub fn copy_for_elsewhere(&self) -> SessionPolicy {
        let mut copy = self.clone();
        copy.shapes.uncounted = [0, 0];
        copy
    }

    /// Takes the state of a copy that judged this session's next text
    /// ([`copy_for_elsewhere`](Self::copy_for_elsewhere)) as its own.
    pub fn adopt(&mut self, mut copy: SessionPolicy) {
        let [a, b] = std::mem::take(&mut self.shapes.uncounted);
        copy.shapes.uncounted[0] += a;
        copy.shapes.uncounted[1] += b;
        // (What the copy still owes the catalog, it owes; this one's
        // debt went with the copy.)
        self.ddl_pending = false;
        *self = copy;
    }

    /// Reviewed statements that can be approved are judged, verdict
    /// `review`, for the session to hold (approvals are on).
    pub fn holding_reviews(mut self, on: bool) -> Self {
        self.holds = on;
        self
    }

    /// The rule reviewing a statement judged `review`, and what approving
    /// it takes.
    pub fn review(
        &mut self,
        decision: &Decision,
    ) -> Option<(String, crate::approvals::ReviewSettings)> {
        let table = self.table()?;
        table
            .review(decision)
            .map(|(rule, settings)| (rule.to_owned(), settings.clone()))
    }

    /// Confines statements to this database (and the system schemas).
    pub fn confined_to(mut self, database: &str) -> Self {
        self.database = Some(database.to_owned());
        self
    }

    /// The verdict table under the current policy (rebuilt after a
    /// reload); `None` when no policy is configured.
    fn table(&mut self) -> Option<Arc<Table>> {
        // The loaded policy is read (a lock and a shared count) only when
        // it changed.
        if let Some((generation, table)) = &self.table {
            if *generation == self.engine.generation() {
                return Some(table.clone());
            }
        }
        let loaded = self.engine.current();
        let policy = loaded.policy.as_ref()?;
        match &self.table {
            Some((generation, table)) if *generation == loaded.generation => Some(table.clone()),
            _ => {
                let table = Arc::new(policy.table(&self.user, &self.groups, &self.target));
                self.table = Some((loaded.generation, table.clone()));
                let mut masks: Vec<MaskRule> = policy
                    .masks
                    .iter()
                    .filter(|m| m.applies(&self.user, &self.groups, &self.target))
                    .cloned()
                    .collect();
                if !masks.is_empty() {
                    // Where values are masked, so are the texts that
                    // quote them (definitions, statements, plans).
                    masks.extend(super::mask::metadata::rules(self.dialect));
                }
                self.masks = Arc::new(masks);
                self.masked_target = policy.masks.iter().any(|m| m.covers_target(&self.target));
                self.read_functions = Arc::new(policy.read_functions.clone());
                Some(table)
            }
        }
    }

    /// Whether the identity can never write on this target: its server
    /// sessions are then made read-only.
    pub fn read_only(&mut self) -> bool {
        let holds = self.holds;
        self.table().is_some_and(|t| t.read_only(holds))
    }

    /// Judges every statement of a text; all must be allowed for any to
    /// run. Returns each statement's judgement.
    pub fn judge(&mut self, sql: &[u8]) -> Result<Vec<Judged>, Refusal> {
        self.judge_text(sql, &sqlgate_net::sample::lossy(sql))
    }

    /// [`SessionPolicy::judge`] of `sql` read as `text` already (the
    /// relay's hook reads it once for the policy and the recording).
    pub fn judge_text(&mut self, sql: &[u8], text: &str) -> Result<Vec<Judged>, Refusal> {
        let outcomes = self.judge_statements_text(sql, text, true);
        let mut judged = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            judged.push(outcome?);
        }
        for j in &judged {
            match &j.statement.risk.prepared {
                Some(Prepared::Define(name, tags)) => {
                    self.prepared.insert(name.clone(), *tags);
                }
                Some(Prepared::Forget(Some(name))) => {
                    self.prepared.remove(name);
                }
                Some(Prepared::Forget(None)) => self.prepared.clear(),
                _ => {}
            }
        }
        Ok(judged)
    }

    /// Each statement's judgement, in order: the live path stops at the
    /// first refusal (`stop`), `sqlgate explain` goes on to show every
    /// statement — one judge for both, so they never disagree.
    pub fn judge_statements(&mut self, sql: &[u8], stop: bool) -> Vec<Result<Judged, Refusal>> {
        self.judge_statements_text(sql, &sqlgate_net::sample::lossy(sql), stop)
    }

    fn judge_statements_text(
        &mut self,
        sql: &[u8],
        text: &str,
        stop: bool,
    ) -> Vec<Result<Judged, Refusal>> {
        let statements = self.classified(sql);
        let table = self.table();
        if std::mem::take(&mut self.ddl_pending) {
            self.engine.want_catalog(&self.target);
        }
        let mut out = Vec::with_capacity(statements.len());
        // What this text prepares, visible to its own later EXECUTEs.
        let mut defined: HashMap<&str, TagSet> = HashMap::new();
        for (i, s) in statements.iter().enumerate() {
            let outcome = self.judge_one(sql, text, (i, statements.len()), s, &table, &mut defined);
            let refused = outcome.is_err();
            out.push(outcome);
            if refused && stop {
                break;
            }
        }
        out
    }

    /// The shape of the text judged last (`judge`, `judge_statements`),
    /// when it is one of the session's remembered shapes: texts of one
    /// shape are the same bytes outside their literals.
    pub fn shape(&self) -> Option<TextShape<'_>> {
        self.shapes.current()
    }

    /// A text's statements, classified: from the shapes this session sent
    /// last when it is one of them with new literals, else from the
    /// engine's cache (`cache.rs`).
    fn classified(&mut self, sql: &[u8]) -> Arc<[StatementRisk]> {
        if let Some(recalled) = self.shapes.recall(sql) {
            if self.shapes.count_due() {
                let n = std::mem::take(&mut self.shapes.uncounted);
                self.engine.count_recalled(self.dialect, n);
            }
            return recalled;
        }
        let (classified, shape) = self.engine.classify_shaped(self.dialect, sql);
        match &shape {
            Some(f) => self.shapes.remember(sql, f, &classified),
            // Its classification is its own: kept for the same bytes
            // (`BEGIN`, `COMMIT`, a text repeated whole).
            None => self.shapes.remember_whole(sql, &classified),
        }
        classified
    }

    /// One statement of a text (`at`: its index and the text's count).
    fn judge_one<'s>(
        &mut self,
        sql: &[u8],
        text: &str,
        at: (usize, usize),
        s: &'s StatementRisk,
        table: &Option<Arc<Table>>,
        defined: &mut HashMap<&'s str, TagSet>,
    ) -> Result<Judged, Refusal> {
        let (i, count) = at;
        let base = self.tags_of(s);
        let tags = match &s.risk.prepared {
            Some(Prepared::Execute(name)) => {
                let mut tags = s.risk.tags;
                tags.extend(
                    defined
                        .get(name.as_str())
                        .or_else(|| self.prepared.get(name))
                        .copied()
                        .unwrap_or(TagSet::of(Tag::Unknown)),
                );
                tags
            }
            Some(Prepared::Define(name, tags)) => {
                defined.insert(name, *tags);
                base
            }
            _ => base,
        };
        let readable = !matches!(s.reading, Reading::Unreadable(_));
        let decision = match table {
            Some(t) => t.decide(tags, readable),
            None if tags.contains(Tag::AdminSecrets) => super::rules::secrets_refusal(),
            None => Decision {
                verdict: Verdict::Allow,
                deciding: None,
            },
        };
        let held = self.holds
            && table
                .as_ref()
                .is_some_and(|t| t.review(&decision).is_some());
        if decision.verdict != Verdict::Allow && !held {
            return Err(self.refusal(sql, s, i, count, tags, &decision));
        }
        if let Some(db) = &self.database {
            let stmt = match &s.reading {
                Reading::Parsed(stmt) => Some(stmt.as_ref()),
                _ => None,
            };
            // A shape this session sent before names the same databases.
            let outside = match self.shapes.reach(i) {
                Some(known) => known.clone(),
                None => {
                    let outside = super::reach::outside(stmt, s.excerpt(text), db);
                    if stmt.is_some_and(super::reach::reads_names_alone) {
                        self.shapes.keep_reach(i, outside.clone());
                    }
                    outside
                }
            };
            if let Some(other) = outside {
                return Err(self.out_of_reach(sql, s, &other));
            }
        }
        if self.masked_target && tags.iter().any(|t| t.name().starts_with("ddl.")) {
            self.ddl_pending = true;
        }
        let masks = if self.masks.is_empty() {
            None
        } else {
            self.follow_search_path(sql, s, i, count, tags)?;
            Some(self.check_masks(text, s, tags)?)
        };
        Ok(Judged {
            statement: s.clone(),
            tags,
            decision,
            masks,
        })
    }

    /// A statement's tags, calls of functions the policy declares reads
    /// judged as reads (`policy::declared`).
    pub fn tags_of(&self, s: &StatementRisk) -> TagSet {
        match &s.reading {
            Reading::Parsed(stmt)
                if !self.read_functions.is_empty() && s.risk.tags.contains(Tag::CodeFunction) =>
            {
                super::declared::tags(stmt, self.dialect, &self.read_functions)
                    .unwrap_or(s.risk.tags)
            }
            _ => s.risk.tags,
        }
    }

    /// Remembers a search path the statement sets (PostgreSQL), for the
    /// names of later statements; past [`MAX_SEARCH_PATHS`] distinct
    /// ones the statement is refused.
    fn follow_search_path(
        &mut self,
        sql: &[u8],
        s: &StatementRisk,
        i: usize,
        count: usize,
        tags: TagSet,
    ) -> Result<(), Refusal> {
        if self.dialect != SqlDialect::Postgres {
            return Ok(());
        }
        let Reading::Parsed(stmt) = &s.reading else {
            return Ok(());
        };
        let Some(path) = super::mask::search_path::set_by(stmt) else {
            return Ok(());
        };
        if self.search_paths.contains(&path) {
            return Ok(());
        }
        if self.search_paths.len() == MAX_SEARCH_PATHS {
            let decision = Decision {
                verdict: Verdict::Deny,
                deciding: None,
            };
            let mut refusal = self.refusal(sql, s, i, count, tags, &decision);
            refusal.by = RefusedBy::Masking;
            refusal.message = format!(
                "masking: this session has set {MAX_SEARCH_PATHS} different search paths; sqlgate follows no more"
            );
            refusal.hint = "qualify names with their schema, or reconnect".to_owned();
            return Err(refusal);
        }
        self.search_paths.push(path);
        Ok(())
    }

    /// The refusal of a statement that names a database outside the
    /// target's.
    fn out_of_reach(&self, sql: &[u8], s: &StatementRisk, other: &str) -> Refusal {
        let text = String::from_utf8_lossy(sql);
        let db = self.database.as_deref().unwrap_or_default();
        Refusal {
            verdict: Verdict::Deny,
            by: RefusedBy::Reach,
            message: format!(
                "database `{other}` is outside target \"{}\" (database `{db}`)",
                self.target
            ),
            detail: format!(
                "statement: {}",
                s.excerpt(&text).chars().take(200).collect::<String>()
            ),
            hint: "connect to the target of that database".to_owned(),
            position: s.start + 1,
            rule: None,
            tags: s.risk.tags,
        }
    }

    /// Judges a call of a function the statement text does not show
    /// (PostgreSQL's fastpath FunctionCall): `code.function`.
    pub fn judge_function_call(&mut self) -> Result<(), Refusal> {
        let Some(table) = self.table() else {
            return Ok(());
        };
        let tags = TagSet::of(Tag::CodeFunction);
        let decision = table.decide(tags, true);
        if decision.verdict == Verdict::Allow {
            return Ok(());
        }
        let s = StatementRisk {
            start: 0,
            end: 0,
            bytes: 0..0,
            risk: super::risk::Risk {
                tags,
                prepared: None,
            },
            reading: Reading::Keywords,
            fingerprint: "<fastpath function call>".into(),
            literal_free: false,
        };
        let mut r = self.refusal(b"", &s, 0, 1, tags, &decision);
        r.detail = format!("a fastpath FunctionCall (a function called by OID) [tags: {tags}]");
        Err(r)
    }

    fn refusal(
        &self,
        sql: &[u8],
        s: &StatementRisk,
        index: usize,
        count: usize,
        tags: TagSet,
        decision: &Decision,
    ) -> Refusal {
        let text = String::from_utf8_lossy(sql);
        let mut excerpt: String = s.excerpt(&text).chars().take(200).collect();
        if excerpt.chars().count() == 200 {
            excerpt.push_str("...");
        }
        let which = if count > 1 {
            format!("statement {} of {count}", index + 1)
        } else {
            "statement".to_owned()
        };
        let tag_list = if tags.is_empty() {
            "none".to_owned()
        } else {
            tags.iter().map(Tag::name).collect::<Vec<_>>().join(", ")
        };
        let target = &self.target;
        let user = &self.user;
        let (message, hint) = match (&decision.deciding, &s.reading) {
            (_, Reading::Unreadable(why)) => (
                format!(
                    "sqlgate cannot read this {which} ({why}); policy [defaults] parse_error = \"{}\"",
                    decision.verdict
                ),
                "rewrite it in a form the gateway can parse, or ask a DBA".to_owned(),
            ),
            (Some((tag, tv)), _) => {
                let by = match &tv.rule {
                    Some(rule) => format!("rule \"{rule}\" ({} = \"{}\")", tv.verdict, tv.entry),
                    None => format!(
                        "no rule for user \"{user}\" on target \"{target}\" names it ([defaults] unmatched = \"{}\")",
                        tv.verdict
                    ),
                };
                match decision.verdict {
                    Verdict::Review => (
                        format!("{which} requires approval: {tag} by {by}"),
                        "nobody can approve it here (the rule names no approvers, or the gateway's [admin] has no tokens): ask a DBA".to_owned(),
                    ),
                    _ => (
                        format!("permission denied by sqlgate policy: {tag} by {by}"),
                        format!(
                            "this identity may not run {tag} on target \"{target}\"{}",
                            if count > 1 { "; no statement of the text ran" } else { "" }
                        ),
                    ),
                }
            }
            (None, _) => (
                format!("{which} refused by sqlgate policy"),
                String::new(),
            ),
        };
        Refusal {
            verdict: decision.verdict,
            by: RefusedBy::Policy,
            message,
            detail: format!("{which}: {excerpt} [tags: {tag_list}]"),
            hint,
            position: s.start + 1,
            rule: decision
                .deciding
                .as_ref()
                .and_then(|(_, tv)| tv.rule.as_deref().map(str::to_owned)),
            tags,
        }
    }
}

/// The statement text of MySQL's `PREPARE name FROM '<text>'`.
fn prepared_text(excerpt: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let tokens = Tokenizer::new(&sqlparser::dialect::MySqlDialect {}, excerpt)
        .tokenize()
        .ok()?;
    let from = tokens
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("from")))?;
    tokens[from + 1..]
        .iter()
        .find_map(|t| match t {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
            Token::Whitespace(_) => None,
            _ => Some(String::new()),
        })
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
