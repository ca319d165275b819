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
            let mut chars = text.char_indices().peekable();
            while let Some((_, c)) = chars.next() {
                if c != '$' {
                    continue;
                }
                let mut tag_has_non_ascii = false;
                while let Some(&(_, n)) = chars.peek() {
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
                    chars.next();
                }
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

/// The words of a statement, upper case (unquoted only: a quoted word is
/// never a keyword); other tokens are empty strings, `(` stays.
fn words(piece: &[TokenWithSpan]) -> Vec<String> {
    piece
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .map(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            Token::LParen => "(".to_owned(),
            _ => String::new(),
        })
        .collect()
}

/// Utility commands sqlparser does not parse, recognised by their leading
/// keywords. Only commands that cannot embed another statement are here;
/// an expression in them that calls a function adds `code.function`.
fn by_keywords(dialect: SqlDialect, words: &[String], piece: &[TokenWithSpan]) -> Option<Risk> {
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let has = |k: &str| words.iter().any(|x| x == k);
    let pg = dialect == SqlDialect::Postgres;
    let mut tags: Vec<Tag> = match (w(0), w(1)) {
        ("VACUUM", _) if has("FULL") => vec![Tag::AdminMaintenance, Tag::DdlBlocking],
        ("VACUUM", _) | ("ANALYZE", _) | ("ANALYSE", _) | ("CHECKPOINT", _) => {
            vec![Tag::AdminMaintenance]
        }
        ("CLUSTER", _) => vec![Tag::AdminMaintenance, Tag::DdlBlocking],
        ("REINDEX", _) | ("REFRESH", "MATERIALIZED") if !has("CONCURRENTLY") => {
            vec![Tag::AdminMaintenance, Tag::DdlBlocking]
        }
        ("REINDEX", _) | ("REFRESH", "MATERIALIZED") => vec![Tag::AdminMaintenance],
        ("DO", _) if pg => vec![Tag::CodeAnonymous],
        ("ALTER", "SYSTEM") => vec![Tag::AdminConfig],
        ("ALTER", "DEFAULT") if w(2) == "PRIVILEGES" => vec![Tag::DclGrant],
        ("ALTER", "DATABASE") if pg && (has("SET") || has("RESET")) => vec![Tag::AdminConfig],
        ("ALTER", "ROLE") | ("ALTER", "USER") | ("ALTER", "GROUP")
            if has("SET") || has("RESET") =>
        {
            vec![Tag::AdminConfig]
        }
        ("CREATE" | "ALTER" | "DROP" | "RENAME", "ROLE" | "USER" | "GROUP") => vec![Tag::DclRole],
        ("SECURITY", "LABEL") => vec![Tag::DclGrant],
        ("GRANT", _) => vec![Tag::DclGrant],
        ("REVOKE", _) => vec![Tag::DclRevoke],
        ("REASSIGN", "OWNED") => vec![Tag::DclRole],
        ("DROP", "OWNED") => vec![Tag::DclRole, Tag::DdlDrop],
        ("CHECK", "TABLE") | ("CHECKSUM", "TABLE") => vec![Tag::Read],
        ("OPTIMIZE", _) | ("REPAIR", _) => vec![Tag::AdminMaintenance],
        ("DROP", "PREPARE") if !pg => vec![Tag::Session],
        ("FLUSH", _) if has("LOCK") => vec![Tag::AdminMaintenance, Tag::WriteLock],
        ("FLUSH", _) | ("RESET", "MASTER") | ("RESET", "SLAVE") | ("RESET", "REPLICA") => {
            vec![Tag::AdminMaintenance]
        }
        // Account credentials: the backend account's password hash.
        ("SHOW", "GRANTS") => vec![Tag::AdminSecrets],
        ("SHOW", "CREATE") if has("USER") => vec![Tag::AdminSecrets],
        ("SHOW", _) | ("HELP", _) => vec![Tag::Read],
        // `DESC table [column]` only: DESC/DESCRIBE are EXPLAIN too.
        ("DESCRIBE", _) | ("DESC", _) if words.len() <= 3 && !has("ANALYZE") => vec![Tag::Read],
        ("FETCH", _) | ("MOVE", _) if pg => vec![Tag::Read],
        // `TABLE name` alone (a locking clause or set operation after it
        // is not read by keywords).
        ("TABLE", _)
            if pg
                && words
                    .iter()
                    .skip(1)
                    .all(|x| x.is_empty() || !is_keyword_after_table(x)) =>
        {
            // `TABLE pg_authid`: credentials (words are upper-cased).
            let credentials = words.iter().skip(1).any(|w| {
                let w = w.to_ascii_lowercase();
                w.ends_with("pg_authid") || w.ends_with("pg_shadow")
            });
            if credentials {
                vec![Tag::Read, Tag::AdminSecrets]
            } else {
                vec![Tag::Read]
            }
        }
        ("KILL", _) => vec![Tag::AdminKill],
        // A prepared branch outlives the session that made it, as
        // PostgreSQL's PREPARE TRANSACTION does: the whole family past
        // START/END is admin.
        ("XA", "PREPARE" | "COMMIT" | "ROLLBACK" | "RECOVER") => {
            vec![Tag::Tx, Tag::AdminMaintenance]
        }
        ("XA", _) => vec![Tag::Tx],
        // Two-phase commit: the prepared transaction outlives the session
        // (holding its locks) and any session of the server role can
        // finish it, another identity's too.
        ("PREPARE", "TRANSACTION") | ("COMMIT", "PREPARED") | ("ROLLBACK", "PREPARED") if pg => {
            vec![Tag::Tx, Tag::AdminMaintenance]
        }
        // Only transaction control made of transaction words: `BEGIN NOT
        // ATOMIC ... END` blocks and `START SLAVE` are not.
        ("BEGIN" | "START", _) | ("SET", "TRANSACTION") if only_tx_words(words) => {
            if has("WRITE") {
                vec![Tag::Tx, Tag::AdminConfig]
            } else {
                vec![Tag::Tx]
            }
        }
        ("SET", "CONSTRAINTS") if pg => vec![Tag::Tx],
        ("SET", "GLOBAL" | "PERSIST" | "PERSIST_ONLY") => vec![Tag::AdminConfig],
        ("SET", "CHARACTER") if w(2) == "SET" && words.len() == 4 => {
            setting_value_tags("names", Some(w(3))).iter().collect()
        }
        ("INSTALL", _) | ("UNINSTALL", _) => vec![Tag::CodeFunction],
        ("LOAD", "DATA") | ("LOAD", "XML") if !pg => vec![Tag::WriteInsert, Tag::FileRead],
        ("CREATE" | "ALTER", _)
            if words
                .iter()
                .take(6)
                .any(|x| x == "FUNCTION" || x == "PROCEDURE") =>
        {
            vec![Tag::CodeFunction]
        }
        ("CREATE", "FULLTEXT" | "SPATIAL") if has("INDEX") => vec![Tag::DdlIndex],
        ("ALTER", "INDEX") => vec![Tag::DdlIndex],
        ("ALTER", "TABLE" | "VIEW" | "SEQUENCE" | "SCHEMA" | "DATABASE" | "TYPE" | "DOMAIN") => {
            let mut t = vec![Tag::DdlAlter];
            if has("RENAME") {
                t = vec![Tag::DdlRename];
            }
            if has("OWNER") {
                t.push(Tag::DclGrant);
            }
            t
        }
        ("DROP", _) => vec![Tag::DdlDrop],
        ("PREPARE", _) if dialect == SqlDialect::Mysql => return mysql_prepare(piece),
        _ => return None,
    };
    if calls_a_function(dialect, piece) && !matches!(w(0), "DO" | "CREATE" | "GRANT" | "REVOKE") {
        tags.push(Tag::CodeFunction);
    }
    Some(Risk {
        tags: tags.into_iter().collect(),
        prepared: None,
    })
}

/// The words of transaction control (BEGIN/START TRANSACTION/SET
/// TRANSACTION and their modes).
fn only_tx_words(words: &[String]) -> bool {
    words.iter().all(|w| {
        matches!(
            w.as_str(),
            "" | "BEGIN"
                | "START"
                | "SET"
                | "TRANSACTION"
                | "WORK"
                | "ISOLATION"
                | "LEVEL"
                | "READ"
                | "WRITE"
                | "ONLY"
                | "COMMITTED"
                | "UNCOMMITTED"
                | "REPEATABLE"
                | "SERIALIZABLE"
                | "DEFERRABLE"
                | "NOT"
                | "WITH"
                | "CONSISTENT"
                | "SNAPSHOT"
                | "SESSION"
                | "CHARACTERISTICS"
                | "AS"
        )
    })
}

/// PostgreSQL forms sqlparser reads wrongly or not at all, rewritten to
/// what they mean so that the statement is parsed (and masking can follow
/// it): `FROM ONLY t` (sqlparser takes ONLY for a table named `ONLY`
/// aliased `t`) loses its ONLY, which only leaves out child tables; `TABLE
/// t` is `SELECT * FROM t`; `OPERATOR(pg_catalog.=)` is `=`.
/// MariaDB's plan statements in the forms sqlparser reads: `ANALYZE
/// [FORMAT=JSON] <statement>` (runs it and reports the plan) is `EXPLAIN
/// ANALYZE ...`; `EXPLAIN EXTENDED|PARTITIONS <statement>` (old forms,
/// the same plan) is `EXPLAIN ...`.
fn normalize_mysql_plans(piece: &mut Vec<TokenWithSpan>) {
    let word = |t: &TokenWithSpan| match &t.token {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    let sig: Vec<usize> = (0..piece.len())
        .filter(|&i| significant(&piece[i]))
        .collect();
    let Some(&first) = sig.first() else { return };
    let at = |k: usize| sig.get(k).map(|&i| word(&piece[i])).unwrap_or_default();
    let runs = |k: usize| {
        matches!(
            at(k).as_str(),
            "SELECT" | "UPDATE" | "DELETE" | "INSERT" | "REPLACE" | "WITH"
        )
    };
    match at(0).as_str() {
        "ANALYZE" if runs(1) || (at(1) == "FORMAT" && runs(4)) => {
            let span = piece[first].span;
            let explain = TokenWithSpan::new(Token::make_keyword("EXPLAIN"), span);
            let space = TokenWithSpan::new(
                Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                span,
            );
            piece.splice(first..first, [explain, space]);
        }
        "EXPLAIN" if matches!(at(1).as_str(), "EXTENDED" | "PARTITIONS") && runs(2) => {
            piece.remove(sig[1]);
        }
        _ => {}
    }
}

fn normalize_pg(piece: &mut Vec<TokenWithSpan>) {
    let is = |t: &TokenWithSpan, k: &str| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    let mut prev: Option<usize> = None;
    let mut i = 0;
    while i < piece.len() {
        if !significant(&piece[i]) {
            i += 1;
            continue;
        }
        let after_from = prev.is_some_and(|p| is(&piece[p], "FROM") || is(&piece[p], "JOIN"));
        if after_from && is(&piece[i], "ONLY") {
            piece.remove(i);
            continue;
        }
        prev = Some(i);
        i += 1;
    }
    // `OPERATOR(pg_catalog.=)` (pg_dump, psql): the built-in operator
    // itself, which sqlparser cannot read in that form.
    let mut i = 0;
    while i + 5 < piece.len() {
        let window: Vec<&Token> = piece[i..i + 6].iter().map(|t| &t.token).collect();
        let builtin = matches!(window[0], Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("OPERATOR"))
            && window[1] == &Token::LParen
            && matches!(window[2], Token::Word(w) if w.value == "pg_catalog")
            && window[3] == &Token::Period
            && window[5] == &Token::RParen;
        if builtin {
            let op = piece[i + 4].clone();
            piece.splice(i..i + 6, [op]);
        }
        i += 1;
    }
    let words: Vec<String> = piece
        .iter()
        .filter(|t| significant(t))
        .map(|t| t.token.to_string().to_ascii_uppercase())
        .collect();
    let plain_table = words.len() >= 2
        && words[0] == "TABLE"
        && words[1..].iter().all(|w| !is_keyword_after_table(w))
        && piece.first().is_some_and(|t| is(t, "TABLE"));
    if plain_table {
        let span = piece[0].span;
        let at = |token| TokenWithSpan { token, span };
        let space = || at(Token::Whitespace(sqlparser::tokenizer::Whitespace::Space));
        piece.splice(
            0..1,
            [
                at(Token::make_keyword("SELECT")),
                space(),
                at(Token::Mul),
                space(),
                at(Token::make_keyword("FROM")),
            ],
        );
    }
}

fn is_keyword_after_table(w: &str) -> bool {
    matches!(
        w,
        "FOR" | "UNION" | "EXCEPT" | "INTERSECT" | "ORDER" | "LIMIT" | "OFFSET" | "FETCH" | "("
    )
}

/// Whether the tokens hold something that looks like a function call (a
/// word followed by `(`): the keyword reading cannot tell which.
fn calls_a_function(dialect: SqlDialect, piece: &[TokenWithSpan]) -> bool {
    let toks: Vec<&Token> = piece
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    // The command's own word (`VACUUM (FULL)`) is not a call.
    toks.windows(2).skip(1).any(|w| {
        matches!(
            (w[0], w[1]),
            (Token::Word(word), Token::LParen)
                if !matches!(
                    word.value.to_ascii_uppercase().as_str(),
                    "IN" | "VALUES" | "KEY" | "INDEX" | "TABLE" | "USING" | "WITH" | "ON" | "SET"
                ) && !function_tags(dialect, None, &word.value).is_empty()
        )
    })
}

/// Statements sqlparser 0.63 cannot parse only because of one clause that
/// changes nothing about what else they do: the clause is cut out, the
/// rest parsed and classified, and the clause's own tags added. A cut is
/// made only where what it removes is known to hold no expression.
fn rewritten(dialect: SqlDialect, piece: &[TokenWithSpan]) -> Option<Risk> {
    let toks: Vec<TokenWithSpan> = piece
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .cloned()
        .collect();
    let upper = |t: &TokenWithSpan| match &t.token {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    let at = |i: usize, seq: &[&str]| {
        seq.iter()
            .enumerate()
            .all(|(k, s)| toks.get(i + k).is_some_and(|t| upper(t) == *s))
    };
    let finish = |rest: Vec<TokenWithSpan>, add: &[Tag], remove: &[Tag]| -> Option<Risk> {
        let stmt = parse_one(dialect, &rest).ok()?;
        let mut risk = classify(&stmt, dialect);
        let mut tags = TagSet::EMPTY;
        for t in risk.tags.iter().filter(|t| !remove.contains(t)) {
            tags.insert(t);
        }
        for t in add {
            tags.insert(*t);
        }
        risk.tags = tags;
        Some(risk)
    };
    // Tokens that may follow a locking clause and hold no expression.
    let plain_tail = |from: usize| {
        toks[from..]
            .iter()
            .all(|t| matches!(t.token, Token::Word(_) | Token::Comma | Token::Period))
    };
    for i in 0..toks.len() {
        // PostgreSQL's weaker row locks, MySQL's LOCK IN SHARE MODE.
        if (at(i, &["FOR", "NO", "KEY", "UPDATE"])
            || at(i, &["FOR", "KEY", "SHARE"])
            || at(i, &["LOCK", "IN", "SHARE", "MODE"]))
            && plain_tail(i)
        {
            return finish(toks[..i].to_vec(), &[Tag::WriteLock], &[]);
        }
        // UPDATE/DELETE ... WHERE CURRENT OF cursor: one row.
        if at(i, &["WHERE", "CURRENT", "OF"]) && toks.len() == i + 4 {
            return finish(toks[..i].to_vec(), &[], &[Tag::WriteUnbounded]);
        }
        // MySQL's SELECT ... INTO OUTFILE/DUMPFILE 'file' [export options].
        if dialect == SqlDialect::Mysql
            && (at(i, &["INTO", "OUTFILE"]) || at(i, &["INTO", "DUMPFILE"]))
            && matches!(
                toks.get(i + 2).map(|t| &t.token),
                Some(Token::SingleQuotedString(_) | Token::DoubleQuotedString(_))
            )
        {
            let mut j = i + 3;
            while let Some(t) = toks.get(j) {
                let option = matches!(
                    upper(t).as_str(),
                    "FIELDS"
                        | "COLUMNS"
                        | "LINES"
                        | "TERMINATED"
                        | "ENCLOSED"
                        | "OPTIONALLY"
                        | "ESCAPED"
                        | "STARTING"
                        | "BY"
                        | "CHARACTER"
                        | "SET"
                ) || matches!(
                    t.token,
                    Token::SingleQuotedString(_) | Token::DoubleQuotedString(_)
                ) || (upper(&toks[j - 1]) == "SET"
                    && matches!(t.token, Token::Word(_)));
                if !option {
                    break;
                }
                j += 1;
            }
            let mut rest = toks[..i].to_vec();
            rest.extend_from_slice(&toks[j..]);
            return finish(rest, &[Tag::FileWrite], &[]);
        }
        // MySQL's CAST(x AS CHAR CHARACTER SET cs): the character set.
        if dialect == SqlDialect::Mysql
            && at(i, &["CHARACTER", "SET"])
            && i > 0
            && matches!(upper(&toks[i - 1]).as_str(), "CHAR" | "VARCHAR")
            && matches!(toks.get(i + 2).map(|t| &t.token), Some(Token::Word(_)))
        {
            let mut rest = toks[..i].to_vec();
            rest.extend_from_slice(&toks[i + 3..]);
            return finish(rest, &[], &[]);
        }
    }
    if upper(toks.first()?) == "SET" {
        return set_list(dialect, &toks[1..]);
    }
    None
}

/// A SET of several assignments sqlparser cannot parse as one (Rails:
/// `SET NAMES utf8mb4 COLLATE x, @@SESSION.sql_mode = CONCAT(...), ...`):
/// each assignment judged on its own.
fn set_list(dialect: SqlDialect, toks: &[TokenWithSpan]) -> Option<Risk> {
    let mut parts: Vec<&[TokenWithSpan]> = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (i, t) in toks.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::Comma if depth == 0 => {
                parts.push(&toks[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[from..]);
    if parts.len() < 2 {
        return None;
    }
    let mut tags = TagSet::EMPTY;
    for part in parts {
        let mut stmt = vec![TokenWithSpan::wrap(Token::make_keyword("SET"))];
        stmt.push(TokenWithSpan::wrap(Token::Whitespace(
            sqlparser::tokenizer::Whitespace::Space,
        )));
        for t in part {
            stmt.push(t.clone());
            stmt.push(TokenWithSpan::wrap(Token::Whitespace(
                sqlparser::tokenizer::Whitespace::Space,
            )));
        }
        let parsed = parse_one(dialect, &stmt).ok()?;
        tags.extend(classify(&parsed, dialect).tags);
    }
    Some(Risk {
        tags,
        prepared: None,
    })
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
mod tests;
