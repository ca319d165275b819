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

use std::sync::Arc;

use sqlparser::ast::Statement;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::builtins::{function_tags, setting_value_tags};
use super::fingerprint;
use super::parse::SqlDialect;
use super::risk::{classify, classify_watching, Prepared, Risk};
use super::tags::{Tag, TagSet};

/// How the classifier read a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Parsed into this AST (kept: masking needs it, and classified texts
    /// are cached, so a statement is parsed once).
    Parsed(Arc<Statement>),
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
    /// The same span in bytes (of the text as UTF-8).
    pub bytes: std::ops::Range<usize>,
    /// Its risk.
    pub risk: Risk,
    /// How it was read.
    pub reading: Reading,
    /// Its fingerprint (`policy::fingerprint`): what recordings store.
    pub fingerprint: Arc<str>,
    /// Its risk, reading and masking would be the same with any other
    /// literal values: texts of its fingerprint may share it.
    pub literal_free: bool,
}

impl StatementRisk {
    /// The statement's text within the whole text (the text it was
    /// classified from; constant time, so judging stays linear).
    pub fn excerpt<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.bytes.clone()).unwrap_or(text)
    }
}

/// Statements one text may hold: parse trees take many times the memory
/// of their text, so a text of countless tiny statements is refused as a
/// whole (`unknown`) rather than parsed.
pub const MAX_STATEMENTS: usize = 10_000;

/// Splits, parses and classifies a statement text. Never fails: what
/// cannot be read is `unknown`.
pub fn classify_text(dialect: SqlDialect, sql: &[u8]) -> Vec<StatementRisk> {
    let Ok(text) = std::str::from_utf8(sql) else {
        let lossy = String::from_utf8_lossy(sql);
        return vec![unreadable(
            dialect,
            &lossy,
            sql.len(),
            "statement text is not valid UTF-8",
        )];
    };
    let whole = |why: &str| vec![unreadable(dialect, text, text.chars().count(), why)];
    if let Some(why) = lexer_hazard(dialect, text) {
        return whole(why);
    }
    let tokens = match Tokenizer::new(dialect.dialect(), text).tokenize_with_location() {
        Ok(t) => t,
        Err(e) => return whole(&e.to_string()),
    };
    if dialect == SqlDialect::Postgres && escape_string_continued(&tokens) {
        return whole(
            "an E'' string continued on another line (PostgreSQL keeps its escapes; sqlparser does not)",
        );
    }
    let lines = LineStarts::new(text);
    let mut bytes = ByteCursor::new(text);
    let mut out = Vec::new();
    let mut piece: Vec<TokenWithSpan> = Vec::new();
    for token in tokens {
        if token.token == Token::SemiColon {
            let until = lines.offset(token.span.start);
            if let Some(s) = statement(
                dialect,
                std::mem::take(&mut piece),
                &lines,
                &mut bytes,
                until,
            ) {
                if out.len() == MAX_STATEMENTS {
                    // Each parse tree takes memory far beyond its text's.
                    return whole("a text of more than 10,000 statements: send it in parts");
                }
                out.push(s);
            }
        } else {
            piece.push(token);
        }
    }
    if let Some(s) = statement(dialect, piece, &lines, &mut bytes, text.chars().count()) {
        out.push(s);
    }
    out
}

/// Turns increasing character offsets into byte offsets, moving forward
/// only: linear in the text over all its statements.
struct ByteCursor<'t> {
    text: &'t str,
    chars: usize,
    bytes: usize,
}

impl<'t> ByteCursor<'t> {
    fn new(text: &'t str) -> Self {
        ByteCursor {
            text,
            chars: 0,
            bytes: 0,
        }
    }

    /// The byte offset of character `target` (not before the last asked).
    fn at(&mut self, target: usize) -> usize {
        for c in self.text[self.bytes..].chars() {
            if self.chars >= target {
                break;
            }
            self.chars += 1;
            self.bytes += c.len_utf8();
        }
        self.bytes
    }
}

/// Texts where the server's lexer and sqlparser's would disagree about
/// where strings, quoted names or comments end, so that the server might
/// run something the gateway does not see. They are unreadable (`unknown`)
/// as a whole.
pub(crate) fn lexer_hazard(dialect: SqlDialect, text: &str) -> Option<&'static str> {
    match dialect {
        SqlDialect::Postgres => {
            // Dollar-quote tags may hold any non-ASCII character for the
            // server, only alphanumerics for sqlparser.
            // (From each `$`, found a word at a time; a tag's characters
            // are never `$`, so each is read once.)
            let mut from = 0;
            while let Some(i) = text[from..].find('$') {
                let after = from + i + 1;
                let mut tag_has_non_ascii = false;
                for n in text[after..].chars() {
                    if n == '$' {
                        if tag_has_non_ascii {
                            return Some("a dollar-quote tag with non-ASCII characters");
                        }
                        break;
                    }
                    if !(n.is_alphanumeric() || n == '_' || !n.is_ascii()) {
                        break;
                    }
                    tag_has_non_ascii |= !n.is_ascii() && !n.is_alphanumeric();
                }
                from = after;
            }
            None
        }
        SqlDialect::Mysql => {
            if text.contains("/*M!") {
                return Some("a MariaDB executable comment /*M! ... */");
            }
            // `--` is a comment for MySQL only before an ASCII space or
            // control character.
            let mut rest = text;
            while let Some(i) = rest.find("--") {
                let after = rest[i + 2..].chars().next();
                if after.is_some_and(|c| c.is_whitespace() && !c.is_ascii()) {
                    return Some("`--` before a non-ASCII space");
                }
                rest = &rest[i + 2..];
            }
            // A `#` or `-- ` inside an executable comment can hide its end.
            let mut rest = text;
            while let Some(i) = rest.find("/*!") {
                let body = &rest[i + 3..];
                let end = body.find("*/").unwrap_or(body.len());
                if body[..end].contains('#') || body[..end].contains("--") {
                    return Some("a comment inside a /*! ... */ executable comment");
                }
                // `/*!NNNNN ...*/` runs only on servers of version NNNNN
                // or later: past 8.0.0 the gateway cannot tell whether
                // the target's server reads it as code or as a comment
                // (`DELETE FROM t /*!99999 WHERE id = 5 */`).
                let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
                if digits.len() >= 5 && digits.parse::<u64>().is_ok_and(|v| v > 80000) {
                    return Some("an executable comment gated on a server version past 8.0.0");
                }
                rest = &body[end..];
            }
            None
        }
    }
}

/// PostgreSQL: `E'...'` followed by a newline and another `'...'`: the
/// continuation is read with the escapes of the first part.
fn escape_string_continued(tokens: &[TokenWithSpan]) -> bool {
    let mut after_escape = false;
    let mut newline = false;
    for t in tokens {
        match &t.token {
            Token::EscapedStringLiteral(_) => {
                after_escape = true;
                newline = false;
            }
            Token::Whitespace(w) if after_escape => {
                newline |= w.to_string().contains('\n');
            }
            Token::SingleQuotedString(_) if after_escape && newline => return true,
            _ => after_escape = false,
        }
    }
    false
}

/// The whole text, unreadable.
fn unreadable(dialect: SqlDialect, text: &str, end: usize, why: &str) -> StatementRisk {
    StatementRisk {
        start: 0,
        end,
        fingerprint: fingerprint::of(dialect, text).key.into(),
        literal_free: false,
        bytes: 0..usize::MAX,
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

/// `until`: where the statement's text ends at the latest (its `;` or the
/// end of the text): the end of its last token, which is where the span
/// ends, can fall short of it (token locations inside MySQL executable
/// comments do), so the byte span runs to `until`, less trailing spaces.
fn statement(
    dialect: SqlDialect,
    mut piece: Vec<TokenWithSpan>,
    lines: &LineStarts,
    cursor: &mut ByteCursor,
    until: usize,
) -> Option<StatementRisk> {
    let first = piece.iter().position(significant)?;
    let last = piece.iter().rposition(significant)?;
    let start = lines.offset(piece[first].span.start);
    let end = lines.offset(piece[last].span.end).max(start);
    let from = cursor.at(start);
    let to = cursor.at(until.max(end));
    let tail = cursor.text[from..to].trim_end().len();
    let bytes = from..from + tail;
    piece.truncate(last + 1);
    piece.drain(..first);
    match dialect {
        SqlDialect::Postgres => normalize_pg(&mut piece),
        SqlDialect::Mysql => normalize_mysql_plans(&mut piece),
    }
    let mut literal_free = false;
    let (risk, reading) = match parse_one(dialect, &piece) {
        Ok(stmt) => {
            let (risk, free) = classify_watching(&stmt, dialect);
            literal_free = free
                && literals_are_values(&piece, &stmt)
                && super::mask::search_path::set_by(&stmt).is_none();
            (risk, Reading::Parsed(Arc::new(stmt)))
        }
        Err(e) => match rewritten(dialect, &piece)
            .or_else(|| by_keywords(dialect, &words(&piece), &piece))
        {
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
    let excerpt = cursor.text.get(bytes.clone()).unwrap_or_default();
    Some(StatementRisk {
        start,
        end,
        fingerprint: fingerprint::of(dialect, excerpt).key.into(),
        bytes,
        risk,
        reading,
        literal_free,
    })
}

/// Whether every literal token of a statement is a value in its parse
/// tree: a string may also be a name (MySQL's `AS 'alias'`), a number a
/// type's length, and such literals decide what the statement means.
fn literals_are_values(piece: &[TokenWithSpan], stmt: &Statement) -> bool {
    use sqlparser::ast::{Expr, Visit, Visitor};
    use sqlparser::tokenizer::Location;
    use std::ops::ControlFlow;
    struct Values(Vec<Location>);
    impl Visitor for Values {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Value(v) => self.0.push(v.span.start),
                Expr::TypedString(t) => self.0.push(t.value.span.start),
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let literals: Vec<Location> = piece
        .iter()
        .filter(|t| {
            !matches!(
                t.token,
                Token::Word(_) | Token::Whitespace(_) | Token::Placeholder(_)
            ) && t
                .token
                .to_string()
                .starts_with(|c: char| c == '\'' || c.is_ascii_digit())
        })
        .map(|t| t.span.start)
        .collect();
    if literals.is_empty() {
        return true;
    }
    let mut values = Values(Vec::new());
    let _ = stmt.visit(&mut values);
    // Sorted, so that a statement of many literals costs n log n.
    let mut values: Vec<(u64, u64)> = values.0.iter().map(|l| (l.line, l.column)).collect();
    values.sort_unstable();
    literals
        .iter()
        .all(|l| values.binary_search(&(l.line, l.column)).is_ok())
}

/// Parses exactly one statement from the tokens.
fn parse_one(dialect: SqlDialect, piece: &[TokenWithSpan]) -> Result<Statement, ParserError> {
    let mut parser = Parser::new(dialect.dialect()).with_tokens_with_locations(piece.to_vec());
    let stmt = parser.parse_statement()?;
    if parser.peek_token().token == Token::EOF {
        Ok(stmt)
    } else {
        parser.expected("end of statement", parser.peek_token())
    }
}

mod keywords;
use keywords::{by_keywords, normalize_mysql_plans, normalize_pg, rewritten, words};

#[cfg(test)]
mod tests;
