//! From a statement text to the risk of each statement in it. The text is
//! tokenized once (sqlparser's tokenizer, so quoting, dollar quoting,
//! comments and MySQL's executable comments are read the way the dialect
//! reads them), split at top-level semicolons, and each piece parsed on
//! its own: one statement the parser cannot read does not hide the others.
//!
//! A piece the parser cannot read is `unknown`, except for a few utility
//! commands sqlparser does not know (VACUUM, DO, ALTER SYSTEM, ...), which
//! are recognised by their leading keywords: they cannot contain other
//! statements, so their keywords say all that the policy needs.

use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::parse::SqlDialect;
use super::risk::{classify, Prepared, Risk};
use super::tags::{Tag, TagSet};

/// How the classifier read a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Parsed into an AST.
    Parsed,
    /// Not parsed; recognised by its leading keywords.
    Keywords,
    /// Neither: the reason the parser gave.
    Unreadable(String),
}

/// One statement of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRisk {
    /// Where it starts in the text, in characters from 0.
    pub start: usize,
    /// Where it ends (exclusive), in characters.
    pub end: usize,
    /// Its risk.
    pub risk: Risk,
    /// How it was read.
    pub reading: Reading,
}

impl StatementRisk {
    /// The statement's text within the whole text.
    pub fn excerpt<'t>(&self, text: &'t str) -> &'t str {
        let byte = |chars: usize| {
            text.char_indices()
                .nth(chars)
                .map(|(b, _)| b)
                .unwrap_or(text.len())
        };
        &text[byte(self.start)..byte(self.end)]
    }
}

/// Splits, parses and classifies a statement text. Never fails: what
/// cannot be read is `unknown`.
pub fn classify_text(dialect: SqlDialect, sql: &[u8]) -> Vec<StatementRisk> {
    let Ok(text) = std::str::from_utf8(sql) else {
        return vec![unreadable(
            0,
            sql.len(),
            "statement text is not valid UTF-8",
        )];
    };
    let tokens = match Tokenizer::new(dialect.dialect(), text).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => return vec![unreadable(0, text.chars().count(), &e.to_string())],
    };
    let lines = LineStarts::new(text);
    let mut out = Vec::new();
    let mut piece: Vec<TokenWithSpan> = Vec::new();
    for token in tokens {
        if token.token == Token::SemiColon {
            if let Some(s) = statement(dialect, std::mem::take(&mut piece), &lines) {
                out.push(s);
            }
        } else {
            piece.push(token);
        }
    }
    if let Some(s) = statement(dialect, piece, &lines) {
        out.push(s);
    }
    out
}

fn unreadable(start: usize, end: usize, why: &str) -> StatementRisk {
    StatementRisk {
        start,
        end,
        risk: Risk {
            tags: TagSet::of(Tag::Unknown),
            prepared: None,
        },
        reading: Reading::Unreadable(why.to_owned()),
    }
}

/// Character offsets of line starts, to turn token locations into
/// positions in the text.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        for (i, c) in text.chars().enumerate() {
            if c == '\n' {
                starts.push(i + 1);
            }
        }
        LineStarts(starts)
    }

    fn offset(&self, loc: sqlparser::tokenizer::Location) -> usize {
        let line = (loc.line as usize).max(1) - 1;
        self.0.get(line).copied().unwrap_or(0) + (loc.column as usize).max(1) - 1
    }
}

fn significant(t: &TokenWithSpan) -> bool {
    !matches!(t.token, Token::Whitespace(_) | Token::EOF)
}

fn statement(
    dialect: SqlDialect,
    mut piece: Vec<TokenWithSpan>,
    lines: &LineStarts,
) -> Option<StatementRisk> {
    let first = piece.iter().position(significant)?;
    let last = piece.iter().rposition(significant)?;
    let start = lines.offset(piece[first].span.start);
    let end = lines.offset(piece[last].span.end).max(start);
    piece.truncate(last + 1);
    piece.drain(..first);
    let words = leading_words(&piece);
    let mut parser = Parser::new(dialect.dialect()).with_tokens_with_locations(piece.clone());
    let parsed = parser.parse_statement().and_then(|stmt| {
        if parser.peek_token().token == Token::EOF {
            Ok(stmt)
        } else {
            parser.expected("end of statement", parser.peek_token())
        }
    });
    let (risk, reading) = match parsed {
        Ok(stmt) => (classify(&stmt, dialect), Reading::Parsed),
        Err(e) => match by_keywords(dialect, &words, &piece) {
            Some(risk) => (risk, Reading::Keywords),
            None => (
                Risk {
                    tags: TagSet::of(Tag::Unknown),
                    prepared: None,
                },
                Reading::Unreadable(e.to_string()),
            ),
        },
    };
    Some(StatementRisk {
        start,
        end,
        risk,
        reading,
    })
}

/// The first words of a statement, upper case (identifiers quoted or not:
/// only keywords matter here, and a quoted word is never one).
fn leading_words(piece: &[TokenWithSpan]) -> Vec<String> {
    piece
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .take(8)
        .map(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            Token::LParen => "(".to_owned(),
            _ => String::new(),
        })
        .collect()
}

/// Utility commands sqlparser does not parse, recognised by their leading
/// keywords. Only commands that cannot embed another statement are here.
fn by_keywords(dialect: SqlDialect, words: &[String], piece: &[TokenWithSpan]) -> Option<Risk> {
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let has = |k: &str| words.iter().any(|x| x == k);
    let tags = |t: &[Tag]| -> Option<Risk> {
        Some(Risk {
            tags: t.iter().copied().collect(),
            prepared: None,
        })
    };
    match (w(0), w(1)) {
        ("VACUUM", _) if has("FULL") => tags(&[Tag::AdminMaintenance, Tag::DdlBlocking]),
        ("VACUUM", _) | ("ANALYZE", _) | ("ANALYSE", _) | ("CHECKPOINT", _) => {
            tags(&[Tag::AdminMaintenance])
        }
        ("CLUSTER", _) => tags(&[Tag::AdminMaintenance, Tag::DdlBlocking]),
        ("REINDEX", _) | ("REFRESH", "MATERIALIZED") if !has("CONCURRENTLY") => {
            tags(&[Tag::AdminMaintenance, Tag::DdlBlocking])
        }
        ("REINDEX", _) | ("REFRESH", "MATERIALIZED") => tags(&[Tag::AdminMaintenance]),
        ("DO", _) if dialect == SqlDialect::Postgres => tags(&[Tag::CodeAnonymous]),
        ("ALTER", "SYSTEM") => tags(&[Tag::AdminConfig]),
        ("ALTER", "DEFAULT") if w(2) == "PRIVILEGES" => tags(&[Tag::DclGrant]),
        ("ALTER", "DATABASE") if has("SET") || has("RESET") => tags(&[Tag::AdminConfig]),
        ("ALTER", "ROLE") | ("ALTER", "USER") | ("ALTER", "GROUP") => tags(&[Tag::DclRole]),
        ("SECURITY", "LABEL") => tags(&[Tag::DclGrant]),
        ("REASSIGN", "OWNED") => tags(&[Tag::DclRole]),
        ("DROP", "OWNED") => tags(&[Tag::DclRole, Tag::DdlDrop]),
        ("OPTIMIZE", _) | ("REPAIR", _) | ("CHECK", "TABLE") | ("CHECKSUM", "TABLE") => {
            tags(&[Tag::AdminMaintenance])
        }
        ("FLUSH", _) | ("RESET", "MASTER") | ("RESET", "SLAVE") | ("RESET", "REPLICA") => {
            tags(&[Tag::AdminMaintenance])
        }
        ("SHOW", _) | ("HELP", _) => tags(&[Tag::Read]),
        ("DESCRIBE", _) | ("DESC", _) if !has("SELECT") => tags(&[Tag::Read]),
        ("KILL", _) => tags(&[Tag::AdminKill]),
        ("XA", _) => tags(&[Tag::Tx]),
        ("INSTALL", _) | ("UNINSTALL", _) => tags(&[Tag::CodeFunction]),
        ("PREPARE", _) if dialect == SqlDialect::Mysql => mysql_prepare(piece),
        _ => None,
    }
}

/// MySQL's `PREPARE name FROM 'text'`: the text is judged as what it is;
/// `FROM @variable` cannot be seen and is `unknown`.
fn mysql_prepare(piece: &[TokenWithSpan]) -> Option<Risk> {
    let toks: Vec<&Token> = piece
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let [_, Token::Word(name), Token::Word(from), text] = toks.as_slice() else {
        return None;
    };
    if !from.value.eq_ignore_ascii_case("FROM") {
        return None;
    }
    let inner = match text {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => {
            let parts = classify_text(SqlDialect::Mysql, s.as_bytes());
            let mut tags = TagSet::EMPTY;
            for p in &parts {
                tags.extend(p.risk.tags);
            }
            // MySQL prepares exactly one statement.
            if parts.len() != 1 {
                tags.insert(Tag::Unknown);
            }
            tags
        }
        _ => TagSet::of(Tag::Unknown),
    };
    Some(Risk {
        tags: inner,
        prepared: Some(Prepared::Define(name.value.to_ascii_lowercase(), inner)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(dialect: SqlDialect, sql: &str) -> Vec<String> {
        classify_text(dialect, sql.as_bytes())
            .iter()
            .map(|s| s.risk.tags.to_string())
            .collect()
    }

    #[test]
    fn each_statement_of_a_text_is_classified() {
        assert_eq!(
            tags(
                SqlDialect::Postgres,
                "select 1; delete from t; vacuum full t"
            ),
            [
                "read",
                "write.delete write.unbounded",
                "admin.maintenance ddl.blocking"
            ]
        );
    }

    #[test]
    fn positions_point_at_the_statement() {
        let text = "select 1;\n  drop table t";
        let parts = classify_text(SqlDialect::Postgres, text.as_bytes());
        assert_eq!(parts[1].excerpt(text), "drop table t");
        assert_eq!(parts[1].start, 12);
    }

    #[test]
    fn executable_comments_are_judged_by_their_content() {
        assert_eq!(
            tags(SqlDialect::Mysql, "select 1 /*! ; drop table t */"),
            ["read", "ddl.drop"]
        );
        assert_eq!(
            tags(SqlDialect::Postgres, "select 1 /*! ; drop table t */"),
            ["read"]
        );
    }

    #[test]
    fn catalog_operators_are_builtins_and_custom_ones_code() {
        assert_eq!(
            tags(
                SqlDialect::Postgres,
                "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default"
            ),
            ["read"]
        );
        assert_eq!(
            tags(SqlDialect::Postgres, "SELECT a OPERATOR(evil.+) b FROM t"),
            ["code.function read"]
        );
    }

    #[test]
    fn unreadable_text_is_unknown() {
        assert_eq!(tags(SqlDialect::Postgres, "selec 1"), ["unknown"]);
        assert_eq!(
            tags(SqlDialect::Postgres, "select 'unterminated"),
            ["unknown"]
        );
        assert!(classify_text(SqlDialect::Postgres, b"  -- nothing\n").is_empty());
    }
}
