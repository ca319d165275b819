//! Statements judged by their tokens as well as their parse tree: the
//! utility commands sqlparser does not parse, recognised by their leading
//! keywords (they cannot embed another statement); MariaDB's plan
//! statements rewritten into forms sqlparser reads; statements parsed with
//! one clause cut out that changes nothing else (its own tags added); `SET`
//! lists judged assignment by assignment; and MySQL's `PREPARE ... FROM`.
//!
//! This module must never give a text fewer tags than what the server
//! would run: a cut is made only where it removes no expression, and an
//! expression that calls a function adds `code.function`.

use super::*;

/// The words of a statement, upper case (unquoted only: a quoted word is
/// never a keyword); other tokens are empty strings, `(` stays.
pub(super) fn words(piece: &[TokenWithSpan]) -> Vec<String> {
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
pub(super) fn by_keywords(
    dialect: SqlDialect,
    words: &[String],
    piece: &[TokenWithSpan],
) -> Option<Risk> {
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
pub(super) fn normalize_mysql_plans(piece: &mut Vec<TokenWithSpan>) {
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

pub(super) fn normalize_pg(piece: &mut Vec<TokenWithSpan>) {
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
pub(super) fn rewritten(dialect: SqlDialect, piece: &[TokenWithSpan]) -> Option<Risk> {
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
