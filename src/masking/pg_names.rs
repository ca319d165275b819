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
use sqlparser::ast::{CloseCursor, Ident, Statement};

use crate::policy::classify::{Reading, StatementRisk};

/// The effect of one statement of `text`.
pub fn effect(s: &StatementRisk) -> Effect {
    // A statement sqlparser cannot read names nothing the relay follows;
    // a `FETCH` of such a form is masked fail-closed (its plan is the
    // engine's unknown-origin mask).
    let Reading::Parsed(stmt) = &s.reading else {
        return Effect::None;
    };
    match stmt.as_ref() {
        Statement::Declare { stmts } => {
            match stmts.first().and_then(|d| d.names.first().map(|n| (d, n))) {
                Some((d, name)) => Effect::Declare {
                    name: server_name(name),
                    hold: d.hold == Some(true),
                    binary: d.binary == Some(true),
                },
                None => Effect::None,
            }
        }
        Statement::Fetch { name, .. } => Effect::Fetch(server_name(name)),
        Statement::Close {
            cursor: CloseCursor::All,
        } => Effect::Close(None),
        Statement::Close {
            cursor: CloseCursor::Specific { name },
        } => Effect::Close(Some(server_name(name))),
        Statement::Deallocate { name, .. }
            if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") =>
        {
            Effect::Deallocate(None)
        }
        Statement::Deallocate { name, .. } => Effect::Deallocate(Some(server_name(name))),
        Statement::Prepare { name, .. } => Effect::Prepare(server_name(name)),
        Statement::Execute {
            name: Some(name),
            immediate: false,
            ..
        } if name.0.len() == 1 => match name.0[0].as_ident() {
            Some(ident) => Effect::Execute(server_name(ident)),
            None => Effect::None,
        },
        _ => Effect::None,
    }
}

/// A name as the server keeps it: unquoted names folded to lower case the
/// way PostgreSQL folds them (ASCII letters only, under UTF-8), then cut
/// to 63 bytes at a character boundary, as its scanner truncates
/// identifiers.
fn server_name(ident: &Ident) -> Vec<u8> {
    let folded = match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_ascii_lowercase(),
    };
    let mut end = folded.len().min(63);
    while !folded.is_char_boundary(end) {
        end -= 1;
    }
    folded.as_bytes()[..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::classify::classify_text as classify;
    use crate::policy::parse::SqlDialect;

    fn effects(sql: &str) -> Vec<Effect> {
        classify(SqlDialect::Postgres, sql.as_bytes())
            .iter()
            .map(effect)
            .collect()
    }

    #[test]
    fn names_are_folded_and_cut_as_the_server_does() {
        // Only ASCII letters fold; 63 bytes at most, whole characters.
        let long = format!("{}é", "a".repeat(62));
        assert_eq!(
            effects(&format!(
                "FETCH ALL FROM Éa; CLOSE {long}; EXECUTE S1; PREPARE P2 AS SELECT 1"
            )),
            vec![
                Effect::Fetch("Éa".as_bytes().to_vec()),
                Effect::Close(Some("a".repeat(62).into_bytes())),
                Effect::Execute(b"s1".to_vec()),
                Effect::Prepare(b"p2".to_vec()),
            ]
        );
        // A FETCH form sqlparser cannot read names no cursor.
        assert_eq!(effects("FETCH ALL \"x b\""), vec![Effect::None]);
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
                    hold: true,
                    binary: false
                },
                Effect::Declare {
                    name: b"Cur".to_vec(),
                    hold: false,
                    binary: false
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
