//! Statement fingerprints: a text with its literal values taken out, so
//! that `SELECT * FROM t WHERE id = 1` and `... WHERE id = 2` share one.
//! One function for its three users: the classification cache (a text
//! whose fingerprint was classified before is not parsed again), the
//! recordings (statements grouped by fingerprint) and approvals.
//!
//! A fingerprint may stand for a text in the cache only where the
//! server, sqlparser and this scanner cannot disagree about where a
//! literal begins and ends: such a fingerprint is *exact*. Whatever lexes
//! differently between them, or by server settings — backslashes, `E''`
//! `X''` `N''` strings, dollar quotes, MySQL double-quoted strings,
//! executable comments and `--` without a space, nested comments,
//! exponents and hex numbers, `?`, anything not ASCII outside strings and
//! comments — makes it inexact: still a fingerprint for people, never a
//! cache key. This module must never call an inexact fingerprint exact.
//!
//! What the key keeps: every word as written, quoted names, operators
//! and punctuation, and one space where the text had whitespace or
//! comments. Words keep their case: MySQL's table names may be
//! case-sensitive, and a case-sensitive comparison anywhere in the
//! classifier or masking would make a folded key unsafe; clients repeat
//! their own spelling, so little sharing is lost.
//! Literals become `?`; the value lists of `IN (...)` become one `?` and
//! identical `VALUES` rows one row, so a statement with another number of
//! values shares its fingerprint. Numbers after `ORDER BY` / `GROUP BY`
//! stay: they name output columns, which masking follows.

use std::ops::Range;

use super::parse::SqlDialect;

/// A text's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The text with literals `?`, comments out, whitespace collapsed.
    pub key: String,
    /// Whether `key` may stand for the text (see the module's doc).
    pub exact: bool,
    /// Where each statement of the text is (exact fingerprints only: the
    /// same spans as the classifier's).
    pub statements: Vec<Shape>,
    /// Where each literal the key holds as a placeholder is, in order.
    pub literals: Vec<Literal>,
}

/// A literal that the key holds as a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// Its bytes in the text, quotes included.
    pub bytes: Range<usize>,
    /// The same span in characters.
    pub chars: Range<usize>,
    pub kind: LiteralKind,
}

/// What a literal's placeholder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiteralKind {
    /// Digits.
    Integer,
    /// Digits, a point, digits.
    Decimal,
    /// A string in single quotes.
    String,
}

/// Where one statement of a text is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Its first token, in characters.
    pub start: usize,
    /// The end of its last token, in characters.
    pub end: usize,
    /// From its first token to its `;` (or the text's end), trailing
    /// whitespace out, in bytes.
    pub bytes: Range<usize>,
}

/// What a string literal becomes. The placeholders cannot come from a
/// text otherwise: a `'` starts a string (replaced whole) and a `?` in a
/// text makes its fingerprint inexact; integers and decimals differ, as
/// a parser may take one and not the other (`varchar(1.5)`).
const STRING: &str = "'?'";
/// What an integer becomes.
const INTEGER: &str = "?";
/// What a number with a decimal point becomes.
const DECIMAL: &str = "?.?";

/// The fingerprint of a statement text.
pub fn of(dialect: SqlDialect, text: &str) -> Fingerprint {
    let mut s = Scan {
        dialect,
        text,
        bytes: text.as_bytes(),
        at: 0,
        chars: 0,
        key: String::with_capacity(text.len()),
        exact: true,
        space: false,
        depth: 0,
        last_word: Word::Other,
        list: None,
        values: None,
        positional: None,
        statement: None,
        statements: Vec::new(),
        literals: Vec::new(),
    };
    if text.as_bytes().contains(&0) {
        // MySQL's lexer ends a text (and a comment) at a NUL.
        s.exact = false;
    }
    s.run();
    let kept = s.key.trim_end_matches([';', ' ']).len();
    s.key.truncate(kept);
    Fingerprint {
        key: s.key,
        exact: s.exact,
        statements: s.statements,
        literals: s.literals,
    }
}

/// The few words that change how the next tokens are keyed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Word {
    In,
    Values,
    Order,
    Group,
    By,
    /// Ends an `ORDER BY` / `GROUP BY` list.
    ClauseEnd,
    Other,
}

fn word_kind(dialect: SqlDialect, word: &str) -> Word {
    let is = |k: &str| word.eq_ignore_ascii_case(k);
    // Most words are none of these: one look at the first letter.
    let first = word.as_bytes().first().map_or(0, u8::to_ascii_lowercase);
    if word.len() > 9 || !b"ivogblfhwuer".contains(&first) {
        Word::Other
    } else if is("in") {
        Word::In
    } else if is("values") {
        Word::Values
    } else if is("order") {
        Word::Order
    } else if is("group") {
        Word::Group
    } else if is("by") {
        Word::By
    } else if [
        "limit",
        "having",
        "for",
        "union",
        "intersect",
        "except",
        "into",
    ]
    .iter()
    .any(|k| is(k))
        || (dialect == SqlDialect::Postgres
            && ["offset", "fetch", "window", "returning"]
                .iter()
                .any(|k| is(k)))
    {
        // Reserved words (a column may be named `offset` in MySQL).
        Word::ClauseEnd
    } else {
        Word::Other
    }
}

/// An `IN (` list being keyed: collapsed to `(?)` if it holds only
/// literals.
struct List {
    /// The depth inside its parenthesis.
    depth: usize,
    /// Where its content starts in the key.
    start: usize,
    /// Only literals of one kind (this placeholder) and commas so far.
    literals_only: bool,
    placeholder: Option<&'static str>,
}

/// A `VALUES` list being keyed: a row equal to the previous one is
/// dropped.
struct Values {
    /// The depth of the rows' parentheses' outside.
    depth: usize,
    /// The previous row, in the key.
    previous: Option<Range<usize>>,
    /// Where the current row starts in the key.
    row: Option<usize>,
}

/// What a token is, to the key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal,
    Comma,
    Other,
}

struct Scan<'t> {
    dialect: SqlDialect,
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
    /// Characters before `at`.
    chars: usize,
    key: String,
    exact: bool,
    /// Whitespace or a comment since the last token.
    space: bool,
    depth: usize,
    /// The last word's kind.
    last_word: Word,
    list: Option<List>,
    values: Option<Values>,
    /// Inside `ORDER BY` / `GROUP BY` at this depth: numbers kept.
    positional: Option<usize>,
    /// The current statement: its first token's (chars, bytes) and its
    /// last token's end in chars.
    statement: Option<(usize, usize, usize)>,
    statements: Vec<Shape>,
    literals: Vec<Literal>,
}

fn ident_byte(b: u8) -> bool {
    IDENT_BYTES[usize::from(b)]
}

/// The bytes of words: ASCII letters, digits, `_`, `$` and every byte of
/// a non-ASCII character (one look-up per byte of every text judged).
const IDENT_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
        b += 1;
    }
    table
};

impl Scan<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    /// Moves to byte `to`, counting characters.
    fn advance_to(&mut self, to: usize) {
        let to = to.min(self.bytes.len());
        self.chars += self.bytes[self.at..to]
            .iter()
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        self.at = to;
    }

    fn run(&mut self) {
        while let Some(b) = self.peek(0) {
            let start = (self.chars, self.at);
            match b {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {
                    // The whole run (each byte one character).
                    self.space = true;
                    let run = self.bytes[self.at..]
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
                        .count();
                    self.chars += run;
                    self.at += run;
                }
                b'-' if self.peek(1) == Some(b'-') && self.line_comment_here() => {
                    self.after_operator();
                    self.skip_line();
                }
                b'#' if self.dialect == SqlDialect::Mysql => self.skip_line(),
                b'/' if self.peek(1) == Some(b'*') => {
                    self.after_operator();
                    self.block_comment();
                }
                b'\'' => self.string(b'\'', start),
                b'"' if self.dialect == SqlDialect::Mysql => {
                    // A string, or a name under ANSI_QUOTES.
                    self.exact = false;
                    self.string(b'"', start);
                }
                b'"' | b'`' => self.quoted_name(b, start),
                b'$' if self.dialect == SqlDialect::Postgres => self.dollar(start),
                b'0'..=b'9' => self.number(start),
                b'.' if self.peek(1).is_some_and(|n| n.is_ascii_digit()) => {
                    self.exact = false;
                    self.number(start);
                }
                b';' => {
                    self.advance_to(self.at + 1);
                    self.end_statement(start);
                    self.token(";", Token::Other, start);
                }
                b if ident_byte(b) => self.word(start),
                b'(' => {
                    self.advance_to(self.at + 1);
                    self.open(start);
                }
                b')' => {
                    self.advance_to(self.at + 1);
                    self.close(start);
                }
                b',' => {
                    self.advance_to(self.at + 1);
                    self.token(",", Token::Comma, start);
                }
                0 => {
                    // MySQL's lexer ends a text at a NUL.
                    self.exact = false;
                    self.advance_to(self.at + 1);
                    self.token("\u{0}", Token::Other, start);
                }
                b'?' | b'\\' => {
                    self.exact = false;
                    self.advance_to(self.at + 1);
                    self.token(if b == b'?' { "?" } else { "\\" }, Token::Other, start);
                }
                b if b.is_ascii() => {
                    // (An ASCII byte is a character of the text itself.)
                    let text = self.text;
                    let s = text.get(self.at..self.at + 1).unwrap_or("?");
                    self.advance_to(self.at + 1);
                    self.token(s, Token::Other, start);
                }
                _ => {
                    // Not ASCII outside strings, names and comments
                    // (unreachable: such bytes start words).
                    self.exact = false;
                    let len = self.text[self.at..]
                        .chars()
                        .next()
                        .map_or(1, char::len_utf8);
                    let piece = &self.text[self.at..self.at + len];
                    self.advance_to(self.at + len);
                    self.token(piece, Token::Other, start);
                }
            }
        }
        let end = (self.chars, self.at);
        self.end_statement(end);
    }

    /// A comment right after an operator character: where an operator
    /// ends (`&--`, `*/*`) the readers disagree.
    fn after_operator(&mut self) {
        if self.at > 0 && b"+-*/<>=~!@#%^&|`?".contains(&self.bytes[self.at - 1]) {
            self.exact = false;
        }
    }

    /// Whether `--` here starts a comment.
    fn line_comment_here(&mut self) -> bool {
        match self.dialect {
            SqlDialect::Postgres => true,
            SqlDialect::Mysql => match self.text[self.at + 2..].chars().next() {
                None => {
                    // At the end: a comment to the server, two minus
                    // signs to sqlparser.
                    self.exact = false;
                    true
                }
                Some(c) if c.is_ascii_whitespace() || c.is_ascii_control() => true,
                Some(c) => {
                    // `--x` is two minus signs to MySQL; the readers differ
                    // on it and on `--` before a non-ASCII space.
                    self.exact = false;
                    c.is_whitespace()
                }
            },
        }
    }

    fn skip_line(&mut self) {
        let rest = &self.text[self.at..];
        let end = match self.dialect {
            // The server's and sqlparser's comments end at either.
            SqlDialect::Postgres => rest.find(['\n', '\r']),
            SqlDialect::Mysql => {
                if rest
                    .split('\n')
                    .next()
                    .is_some_and(|line| line.contains('\r'))
                {
                    self.exact = false;
                }
                rest.find('\n')
            }
        };
        self.advance_to(end.map_or(self.bytes.len(), |i| self.at + i));
        self.space = true;
    }

    fn block_comment(&mut self) {
        let body = &self.text[self.at + 2..];
        if self.dialect == SqlDialect::Mysql
            && (body.starts_with('!') || body.starts_with("M!") || body.starts_with('+'))
        {
            // Executable comments and hints: code to the server.
            self.exact = false;
        }
        let end = match body.find("*/") {
            Some(i) => {
                // Nested (PostgreSQL and sqlparser count depth; `/* /*/`
                // opens a second level): inexact in either dialect.
                if body[..i + 1].contains("/*") {
                    self.exact = false;
                }
                self.at + 2 + i + 2
            }
            None => {
                self.exact = false;
                self.bytes.len()
            }
        };
        self.advance_to(end);
        self.space = true;
    }

    fn string(&mut self, quote: u8, start: (usize, usize)) {
        if self.at > 0 {
            let before = self.bytes[self.at - 1];
            if ident_byte(before) || before == b'&' {
                // E'', X'', N'', B'', _utf8'', U&'': prefixes the readers
                // take differently.
                self.exact = false;
            }
        }
        let escapes = self.dialect == SqlDialect::Mysql
            || (self.at > 0 && matches!(self.bytes[self.at - 1], b'e' | b'E'));
        let end = self.closing(quote, Some(escapes));
        self.advance_to(end);
        if quote == b'\'' {
            self.literal(start, LiteralKind::String);
        }
        self.token(STRING, Token::Literal, start);
    }

    /// Where the quoted text starting here ends (past its closing quote;
    /// a doubled quote is one character). `backslashes`: inside a string
    /// (`Some(escapes)`), a backslash makes the fingerprint inexact and,
    /// if it escapes, takes the next byte.
    fn closing(&mut self, quote: u8, backslashes: Option<bool>) -> usize {
        let mut i = self.at + 1;
        loop {
            match self.bytes.get(i) {
                None => {
                    self.exact = false;
                    return self.bytes.len();
                }
                Some(b'\\') if backslashes.is_some() => {
                    self.exact = false;
                    i += if backslashes == Some(true) { 2 } else { 1 };
                }
                Some(&b) if b == quote => {
                    if self.bytes.get(i + 1) == Some(&quote) {
                        i += 2;
                    } else {
                        return i + 1;
                    }
                }
                Some(_) => i += 1,
            }
        }
    }

    fn quoted_name(&mut self, quote: u8, start: (usize, usize)) {
        if quote == b'`' && self.dialect == SqlDialect::Postgres {
            self.exact = false;
        }
        let end = self.closing(quote, None).min(self.bytes.len());
        let name = &self.text[self.at..end];
        self.advance_to(end);
        self.token(name, Token::Other, start);
    }

    /// `$1` (a parameter) or a dollar-quoted string.
    fn dollar(&mut self, start: (usize, usize)) {
        if self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
            let mut i = self.at + 1;
            while self.bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if self.bytes.get(i).is_some_and(|&b| ident_byte(b)) {
                self.exact = false;
            }
            let param = &self.text[self.at..i];
            self.advance_to(i);
            self.token(param, Token::Other, start);
            return;
        }
        self.exact = false;
        let tag_end = self.text[self.at + 1..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map(|i| self.at + 1 + i);
        match tag_end {
            Some(e) if self.bytes[e] == b'$' => {
                let tag = &self.text[self.at..=e];
                let end = self.text[e + 1..]
                    .find(tag)
                    .map_or(self.bytes.len(), |i| e + 1 + i + tag.len());
                self.advance_to(end);
                self.token(STRING, Token::Literal, start);
            }
            _ => {
                self.advance_to(self.at + 1);
                self.token("$", Token::Other, start);
            }
        }
    }

    fn number(&mut self, start: (usize, usize)) {
        let mut i = self.at;
        let digits = |i: &mut usize, bytes: &[u8]| {
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
        };
        digits(&mut i, self.bytes);
        if self.bytes.get(i) == Some(&b'.') {
            i += 1;
            if self.bytes.get(i).is_some_and(u8::is_ascii_digit) {
                digits(&mut i, self.bytes);
            } else {
                self.exact = false;
            }
        }
        if self
            .bytes
            .get(i)
            .is_some_and(|&b| ident_byte(b) || b == b'.')
        {
            // Exponents, hex, `1abc`: read differently by each reader.
            self.exact = false;
            while self
                .bytes
                .get(i)
                .is_some_and(|&b| ident_byte(b) || b == b'.')
            {
                i += 1;
            }
        }
        let literal = &self.text[self.at..i];
        if literal.len() > 18 {
            // Past what every reader holds in 64 bits (sqlparser fails on
            // such a type modifier where a shorter one parses).
            self.exact = false;
        }
        self.advance_to(i);
        if self.positional.is_some() {
            self.token(literal, Token::Other, start);
        } else if literal.contains('.') {
            self.literal(start, LiteralKind::Decimal);
            self.token(DECIMAL, Token::Literal, start);
        } else {
            self.literal(start, LiteralKind::Integer);
            self.token(INTEGER, Token::Literal, start);
        }
    }

    fn word(&mut self, start: (usize, usize)) {
        let mut i = self.at;
        while self.bytes.get(i).is_some_and(|&b| ident_byte(b)) {
            i += 1;
        }
        // Sound: the loop stops only before an ASCII byte or at the end.
        let word = &self.text[self.at..i];
        let ascii = word.is_ascii();
        if !ascii {
            self.exact = false;
        }
        let kind = word_kind(self.dialect, word);
        // `c.limit`, `@offset`: names, not clause words.
        let qualified = self.at > 0 && matches!(self.bytes[self.at - 1], b'.' | b'@');
        if kind == Word::By && matches!(self.last_word, Word::Order | Word::Group) {
            // The outermost list stays (a nested one ends at its `)`).
            let depth = self.positional.map_or(self.depth, |d| d.min(self.depth));
            self.positional = Some(depth);
        } else if kind == Word::ClauseEnd && !qualified && self.positional == Some(self.depth) {
            self.positional = None;
        }
        if ascii {
            // A character a byte.
            self.chars += i - self.at;
            self.at = i;
        } else {
            self.advance_to(i);
        }
        self.token(word, Token::Other, start);
        self.last_word = kind;
        if kind == Word::Values {
            self.values = Some(Values {
                depth: self.depth,
                previous: None,
                row: None,
            });
        }
    }

    fn open(&mut self, start: (usize, usize)) {
        let after_in = self.last_word == Word::In;
        let row = self.values.as_ref().is_some_and(|v| v.depth == self.depth);
        self.token("(", Token::Other, start);
        if row {
            if let Some(v) = self.values.as_mut() {
                v.row = Some(self.key.len() - 1);
            }
        }
        self.depth += 1;
        if after_in {
            self.list = Some(List {
                depth: self.depth,
                start: self.key.len(),
                literals_only: true,
                placeholder: None,
            });
        }
    }

    fn close(&mut self, start: (usize, usize)) {
        if let Some(list) = self.list.take_if(|l| l.depth == self.depth) {
            if let (true, Some(placeholder)) = (list.literals_only, list.placeholder) {
                self.key.truncate(list.start);
                self.key.push_str(placeholder);
            }
        }
        self.token(")", Token::Other, start);
        self.depth = self.depth.saturating_sub(1);
        if self.positional.is_some_and(|d| d > self.depth) {
            self.positional = None;
        }
        if self.values.as_ref().is_some_and(|v| v.depth > self.depth) {
            self.values = None;
        }
        let depth = self.depth;
        if let Some(v) = self.values.as_mut().filter(|v| v.depth == depth) {
            if let Some(row_start) = v.row.take() {
                let row = row_start..self.key.len();
                let same = v.previous.as_ref().is_some_and(|p| {
                    matches!(&self.key[p.end..row.start], "," | ", ")
                        && self.key[p.clone()] == self.key[row.clone()]
                });
                if same {
                    let end = v.previous.as_ref().map_or(row.start, |p| p.end);
                    self.key.truncate(end);
                } else {
                    v.previous = Some(row);
                }
            }
        }
    }

    /// Notes the literal from `start` to here.
    fn literal(&mut self, start: (usize, usize), kind: LiteralKind) {
        self.literals.push(Literal {
            bytes: start.1..self.at,
            chars: start.0..self.chars,
            kind,
        });
    }

    /// Appends a token to the key.
    fn token(&mut self, text: &str, kind: Token, start: (usize, usize)) {
        if std::mem::take(&mut self.space)
            && !self.key.is_empty()
            && !matches!(text, ")" | "," | ";")
            && !self.key.ends_with('(')
        {
            self.key.push(' ');
        }
        self.key.push_str(text);
        if let Some(list) = self.list.as_mut() {
            if self.depth == list.depth {
                list.literals_only &= kind != Token::Other;
                if kind == Token::Literal {
                    let placeholder = [STRING, INTEGER, DECIMAL].into_iter().find(|p| *p == text);
                    if list.placeholder.is_some_and(|p| Some(p) != placeholder) {
                        list.literals_only = false;
                    }
                    list.placeholder = placeholder;
                }
            } else if self.depth > list.depth {
                list.literals_only = false;
            }
        }
        if let Some(v) = &self.values {
            let between_rows = v.depth == self.depth && v.row.is_none();
            if between_rows && text != "(" && kind != Token::Comma && text != ")" {
                self.values = None;
            }
        }
        if text == ";" {
            self.list = None;
            self.values = None;
            self.positional = None;
            self.depth = 0;
            return;
        }
        let end = self.chars;
        match self.statement.as_mut() {
            Some(s) => s.2 = end,
            None => self.statement = Some((start.0, start.1, end)),
        }
    }

    /// Closes the current statement at `until` (its `;` or the end).
    fn end_statement(&mut self, until: (usize, usize)) {
        let Some((start, from, end)) = self.statement.take() else {
            return;
        };
        let tail = self.text[from..until.1].trim_end().len();
        self.statements.push(Shape {
            start,
            end,
            bytes: from..from + tail,
        });
    }
}

#[cfg(test)]
mod tests;
