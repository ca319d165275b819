//! What a PostgreSQL statement does to the server's prepared statements
//! and portals, in the relay's terms (`sqlgate_postgres::Effect`).
//!
//! Why: SQL cursors and SQL-level `DEALLOCATE` share the namespaces of
//! the extended protocol's portals and statements. The relay keeps one
//! map of each, moved by the server's answers; these effects tell it
//! which names a completed statement made or dropped. This module must
//! never decide masks: a `FETCH` only names the portal whose plan the
//! relay applies.

use sqlgate_postgres::Effect;
use sqlparser::ast::{CloseCursor, Statement};

use crate::policy::classify::{Reading, StatementRisk};
use crate::policy::mask::lineage::norm;

/// The effect of one statement of `text`.
pub fn effect(s: &StatementRisk, text: &str) -> Effect {
    let Reading::Parsed(stmt) = &s.reading else {
        // `FETCH` forms sqlparser does not read: the cursor is the last
        // word, as the server reads it.
        let words: Vec<&str> = s.excerpt(text).split_whitespace().collect();
        if words
            .first()
            .is_some_and(|w| w.eq_ignore_ascii_case("fetch"))
        {
            if let Some(last) = words.last() {
                return Effect::Fetch(name_of_word(last.trim_end_matches(';')));
            }
        }
        return Effect::None;
    };
    match stmt.as_ref() {
        Statement::Declare { stmts } => {
            match stmts.first().and_then(|d| d.names.first().map(|n| (d, n))) {
                Some((d, name)) => Effect::Declare {
                    name: norm(name).into_bytes(),
                    hold: d.hold == Some(true),
                },
                None => Effect::None,
            }
        }
        Statement::Fetch { name, .. } => Effect::Fetch(norm(name).into_bytes()),
        Statement::Close {
            cursor: CloseCursor::All,
        } => Effect::Close(None),
        Statement::Close {
            cursor: CloseCursor::Specific { name },
        } => Effect::Close(Some(norm(name).into_bytes())),
        Statement::Deallocate { name, .. }
            if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") =>
        {
            Effect::Deallocate(None)
        }
        Statement::Deallocate { name, .. } => Effect::Deallocate(Some(norm(name).into_bytes())),
        _ => Effect::None,
    }
}

/// A name written as one word: quoted names keep their case.
fn name_of_word(word: &str) -> Vec<u8> {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\"").into_bytes(),
        None => word.to_lowercase().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::classify::classify_text as classify;
    use crate::policy::parse::SqlDialect;

    fn effects(sql: &str) -> Vec<Effect> {
        classify(SqlDialect::Postgres, sql.as_bytes())
            .iter()
            .map(|s| effect(s, sql))
            .collect()
    }

    #[test]
    fn names_follow_the_servers_case_folding() {
        assert_eq!(
            effects(
                "DECLARE Cur CURSOR WITH HOLD FOR SELECT 1; DECLARE \"Cur\" CURSOR FOR SELECT 1"
            ),
            vec![
                Effect::Declare {
                    name: b"cur".to_vec(),
                    hold: true
                },
                Effect::Declare {
                    name: b"Cur".to_vec(),
                    hold: false
                },
            ]
        );
        assert_eq!(
            effects(
                "FETCH 2 FROM Cur; CLOSE \"X\"; CLOSE ALL; DEALLOCATE S1; DEALLOCATE ALL; SELECT 1"
            ),
            vec![
                Effect::Fetch(b"cur".to_vec()),
                Effect::Close(Some(b"X".to_vec())),
                Effect::Close(None),
                Effect::Deallocate(Some(b"s1".to_vec())),
                Effect::Deallocate(None),
                Effect::None,
            ]
        );
    }
}
