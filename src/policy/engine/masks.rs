//! A session's masking: the plan of each statement's results (or the
//! refusal of one masking cannot follow), the masks of results tied to
//! no judged statement, and what the session's masking needs of the
//! engine (its rules, hash key, the target's catalog). It must never
//! let a statement through whose result columns it cannot trace.

use super::*;

impl SessionPolicy {
    /// The masks of a result not tied to a judged statement: every column
    /// without an unmasked table column behind it redacted.
    pub fn unknown_result(&self) -> StatementMasks {
        StatementMasks {
            plan: None,
            reads_masked: true,
            opaque: false,
            rules: self.masks.clone(),
            procedure: false,
            named: None,
            names: Vec::new(),
        }
    }

    /// The names of the masking rules that apply (the built-in ones
    /// included).
    pub fn mask_rule_names(&mut self) -> Vec<String> {
        self.table();
        self.masks.iter().map(|m| m.name.clone()).collect()
    }

    /// Whether masking rules apply to this identity on this target.
    pub fn masking(&mut self) -> bool {
        self.table();
        !self.masks.is_empty()
    }

    /// The hashing key of the `hash` masking function.
    pub fn hash_key(&self) -> HashKey {
        self.engine.hash_key.clone()
    }

    /// A target's catalog snapshot, if read.
    pub fn catalog(&self) -> Option<Arc<CatalogSnapshot>> {
        self.engine.catalog(&self.target)
    }

    /// Masking (see `mask::guard`): the plan of a statement's results, or
    /// the refusal of one masking cannot follow.
    pub(super) fn check_masks(
        &self,
        text: &str,
        s: &StatementRisk,
        tags: TagSet,
    ) -> Result<StatementMasks, Refusal> {
        let excerpt = s.excerpt(text);
        let refuse = |message: String, hint: String| Refusal {
            verdict: Verdict::Deny,
            by: RefusedBy::Masking,
            detail: format!(
                "statement: {} [tags: {tags}]",
                excerpt.chars().take(200).collect::<String>()
            ),
            message,
            hint,
            position: s.start + 1,
            rule: None,
            tags,
        };
        let Some(catalog) = self.engine.catalog(&self.target) else {
            self.engine.want_catalog(&self.target);
            return Err(refuse(
                format!("sqlgate has not read the catalog of target \"{}\" yet, so masked columns cannot be checked", self.target),
                "retry in a moment".to_owned(),
            ));
        };
        let words: Vec<String> = excerpt
            .split_whitespace()
            .take(2)
            .map(str::to_ascii_uppercase)
            .collect();
        // Code whose reads are unknown (user functions, procedures,
        // anonymous blocks): what it returns or says may carry masked
        // values. MySQL's SHOW WARNINGS / SHOW ERRORS repeat messages of
        // earlier statements, which may quote values.
        // (A function declared a read is still code to masking.)
        let opaque = tags.iter().any(|t| t.name().starts_with("code."))
            || s.risk.tags.contains(Tag::CodeFunction);
        // Code the identity writes itself runs with its reads unseen and
        // can put what it reads anywhere: not where masking applies.
        let routine = words.first().is_some_and(|w| w == "CREATE")
            && excerpt.split_whitespace().take(6).any(|w| {
                matches!(
                    w.to_ascii_uppercase().as_str(),
                    "FUNCTION" | "PROCEDURE" | "TRIGGER" | "EVENT" | "RULE"
                )
            });
        if tags.contains(Tag::CodeAnonymous) || routine {
            return Err(refuse(
                "masking: anonymous code blocks and new functions, procedures, triggers, events or rules are not allowed where masking rules apply".to_owned(),
                "ask someone the masking rules exempt".to_owned(),
            ));
        }
        let diagnostics = words.first().is_some_and(|w| w == "SHOW")
            && words
                .get(1)
                .is_some_and(|w| w.starts_with("WARNINGS") || w.starts_with("ERRORS"));
        let masks = |plan, reads_masked, procedure| StatementMasks {
            plan,
            reads_masked,
            opaque,
            rules: self.masks.clone(),
            procedure,
            named: None,
            names: Vec::new(),
        };
        if self.dialect == SqlDialect::Mysql && !diagnostics {
            if let Some(named) = self.show_masks(excerpt, s, &words) {
                return named.map_err(|(message, hint)| refuse(message, hint));
            }
        }
        if words.first().is_some_and(|w| w == "FETCH") && self.dialect == SqlDialect::Postgres {
            let stmt = match &s.reading {
                Reading::Parsed(stmt) => Some(stmt.as_ref()),
                _ => None,
            };
            // The rows of a portal: the relay masks them by that portal's
            // plan as the server has it (or fail-closed).
            let _ = stmt;
            return Ok(self.unknown_result());
        }
        if self.dialect == SqlDialect::Mysql
            && words.first().is_some_and(|w| w == "PREPARE")
            && !matches!(s.reading, Reading::Parsed(_))
            && tags.contains(Tag::Read)
        {
            // `PREPARE s FROM '<text>'`: the text is judged here; what
            // its EXECUTE returns is masked by nothing but the wire, so a
            // text that reads masked columns is refused, as in PostgreSQL.
            let inner = prepared_text(excerpt);
            let statements = inner
                .as_deref()
                .map(|t| self.engine.classify(self.dialect, t.as_bytes()));
            let reads_masked = match (&inner, &statements) {
                (Some(text), Some(list)) if !list.is_empty() => {
                    let mut any = false;
                    for inner_s in list.iter() {
                        if matches!(inner_s.reading, Reading::Unreadable(_)) {
                            any = true;
                            break;
                        }
                        let m = self.check_masks(text, inner_s, inner_s.risk.tags)?;
                        // Its results would need a mask (or cannot be told).
                        any |= match &m.plan {
                            Some(cols) => cols.iter().any(|c| {
                                !matches!(c, crate::policy::mask::rules::ColumnPlan::Clear)
                            }),
                            None => m.reads_masked || m.opaque,
                        };
                    }
                    any
                }
                _ => true,
            };
            if reads_masked {
                return Err(refuse(
                    "masking: SQL PREPARE of a statement that reads masked columns (its EXECUTE could not be masked)".to_owned(),
                    "send the statement itself, or prepare it with the protocol (COM_STMT_PREPARE)".to_owned(),
                ));
            }
            return Ok(masks(None, false, false));
        }
        let Reading::Parsed(stmt) = &s.reading else {
            let harmless = matches!(
                words.first().map(String::as_str).unwrap_or(""),
                "SHOW" | "FETCH" | "MOVE" | "HELP" | "DESCRIBE" | "DESC" | "EXECUTE"
            );
            if tags.contains(Tag::Read) && !harmless {
                return Err(refuse(
                    "sqlgate cannot check this statement against the masking rules that apply to this identity".to_owned(),
                    "rewrite it as a plain SELECT".to_owned(),
                ));
            }
            return Ok(masks(None, opaque || diagnostics, false));
        };
        if diagnostics {
            return Ok(masks(None, true, false));
        }
        if let sqlparser::ast::Statement::Call(_) = stmt.as_ref() {
            // What a procedure returns cannot be known from its call.
            return Ok(masks(None, true, true));
        }
        let session_catalog = crate::policy::mask::catalog::SessionCatalog {
            snapshot: &catalog,
            paths: &self.search_paths,
        };
        let checked = crate::policy::mask::guard::check(
            stmt,
            self.dialect,
            &session_catalog,
            &self.masks.iter().collect::<Vec<_>>(),
            opaque,
        )
        .map_err(|r| {
            if r.stale {
                self.engine.want_catalog(&self.target);
            }
            refuse(format!("masking: {}", r.message), r.hint)
        })?;
        Ok(StatementMasks {
            named: checked.named,
            names: checked.names,
            ..masks(checked.plan, checked.reads_masked || opaque, false)
        })
    }

    /// MySQL's `SHOW` and `DESCRIBE <table>`: lists of objects and their
    /// definitions, never a table's rows, so nothing is masked but the
    /// columns that quote SQL (by name). A `WHERE` on such a list could
    /// ask about a definition's literals: only lists of names take one.
    #[allow(clippy::type_complexity)]
    pub(super) fn show_masks(
        &self,
        excerpt: &str,
        s: &StatementRisk,
        words: &[String],
    ) -> Option<Result<StatementMasks, (String, String)>> {
        let describes_table = matches!(
            &s.reading,
            Reading::Parsed(stmt) if matches!(stmt.as_ref(), sqlparser::ast::Statement::ExplainTable { .. })
        ) || (matches!(
            words.first().map(String::as_str),
            Some("DESCRIBE" | "DESC")
        ) && !matches!(s.reading, Reading::Parsed(_)));
        let show = words.first().is_some_and(|w| w == "SHOW");
        if !show && !describes_table {
            return None;
        }
        let names_only = matches!(
            &s.reading,
            Reading::Parsed(stmt) if matches!(
                stmt.as_ref(),
                sqlparser::ast::Statement::ShowTables { .. }
                    | sqlparser::ast::Statement::ShowDatabases { .. }
                    | sqlparser::ast::Statement::ShowSchemas { .. }
                    | sqlparser::ast::Statement::ShowViews { .. }
                    | sqlparser::ast::Statement::ShowVariables { .. }
                    | sqlparser::ast::Statement::ShowStatus { .. }
            )
        );
        let filtered = excerpt
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .any(|w| w.eq_ignore_ascii_case("WHERE"));
        // Lists of routines (mysqldump --routines filters them by
        // database): names, owners and dates, no definitions.
        let upper: String = excerpt
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_uppercase();
        let routine_list = matches!(
            upper.as_str(),
            "SHOW FUNCTION STATUS" | "SHOW PROCEDURE STATUS" | "SHOW PACKAGE STATUS"
        );
        if filtered && !names_only && !routine_list {
            return Some(Err((
                "masking: a WHERE on this SHOW could ask about the literals of definitions sqlgate masks".to_owned(),
                "filter by name with LIKE, or query information_schema".to_owned(),
            )));
        }
        Some(Ok(StatementMasks {
            plan: None,
            reads_masked: false,
            opaque: false,
            rules: self.masks.clone(),
            procedure: false,
            named: Some(crate::policy::mask::metadata::NamedTexts::Show(
                self.dialect,
            )),
            names: Vec::new(),
        }))
    }
}
