//! What a retry must match in `review_mode = "retry"`: the statement as
//! the server will read it, tokens and all — only whitespace, comments and
//! the case of keywords may differ — and its bound values.
//!
//! This module must never let two statements the server reads differently
//! share a key: every literal, quoted name, dollar-quoted body and
//! operator is kept as written, each token length-prefixed (no separator
//! a value could forge).

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::policy::parse::SqlDialect;

/// The key of a text: its tokens but whitespace and comments, keywords
/// upper-cased; a text the tokenizer cannot read is its exact bytes.
pub fn text_key(dialect: SqlDialect, text: &str) -> String {
    let Ok(tokens) = Tokenizer::new(dialect.dialect(), text).tokenize() else {
        return format!("raw:{}:{text}", text.len());
    };
    let mut out = String::with_capacity(text.len() + 16);
    let mut kept: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() && w.keyword != Keyword::NoKeyword => {
                w.value.to_ascii_uppercase()
            }
            other => other.to_string(),
        })
        .collect();
    while kept.last().is_some_and(|t| t == ";") {
        kept.pop();
    }
    for t in kept {
        out.push_str(&format!("{}:{t}", t.len()));
    }
    out
}

/// The key of an execution's bound values (`None` each: NULL).
pub fn values_key(values: &[Option<String>]) -> String {
    let mut out = String::new();
    for v in values {
        match v {
            Some(v) => out.push_str(&format!("{}:{v}", v.len())),
            None => out.push('N'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whitespace_comments_and_keyword_case_may_differ() {
        let pg = |s: &str| text_key(SqlDialect::Postgres, s);
        assert_eq!(
            pg("DELETE FROM t WHERE id = 1"),
            pg("delete  from t\n where id = 1 -- again")
        );
        for (a, b) in [
            ("DELETE FROM t WHERE id = 1", "DELETE FROM t WHERE id = 2"),
            ("DELETE FROM \"tenant-a\".o", "DELETE FROM \"tenant-b\".o"),
            (
                "DO $$BEGIN EXECUTE 'TRUNCATE a'; END$$",
                "DO $$BEGIN EXECUTE 'TRUNCATE b'; END$$",
            ),
            (
                "DELETE FROM t WHERE a IN (1, 2) AND b IN (3)",
                "DELETE FROM t WHERE a IN (1) AND b IN (2, 3)",
            ),
            ("EXECUTE d(5)", "EXECUTE d(0)"),
        ] {
            assert_ne!(pg(a), pg(b), "{a} / {b}");
        }
        assert_ne!(
            values_key(&[Some("1".into()), Some("2".into())]),
            values_key(&[Some("12".into())])
        );
        assert_ne!(values_key(&[None]), values_key(&[Some("N".into())]));
    }
}
