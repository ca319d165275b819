//! Whether a statement text may carry a credential, and the text that
//! records, logs and approvers are then given: its literals replaced.
//! Every recorded statement passes the scan, so it is one pass over the
//! bytes.
//!
//! This module must never let a text that names a credential word
//! through with its literals: a password, or a hash of one, in a record
//! or a log is a secret that left the gateway.

use std::ops::Range;

use crate::policy::literals;
use crate::policy::parse::SqlDialect;
use crate::policy::tags::Tag;

use super::shapes::Piece;

/// The words that mark a text as one that may carry a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "PASSWORD",
    "IDENTIFIED",
    "MASTER_PASSWORD",
    "SOURCE_PASSWORD",
    "SSLPASSWORD",
    "PGP_SYM_ENCRYPT",
    "PGP_SYM_DECRYPT",
    "PGP_PUB_ENCRYPT",
    "PGP_PUB_DECRYPT",
    "AES_ENCRYPT",
    "AES_DECRYPT",
    "DES_ENCRYPT",
    "DES_DECRYPT",
    "ENCRYPT",
    "ENCODE",
    "DECODE",
    "CRYPT",
    "KEYRING_KEY_STORE",
];

/// Whether a text may carry a credential (`PASSWORD 'x'`, `IDENTIFIED BY
/// 'x'`): such texts are recorded with their literals out, so that no
/// password, nor a hash of one, reaches the store.
pub(super) fn names_a_credential(text: &str) -> bool {
    any_credential_word(text.as_bytes(), |_| true)
}

/// Whether a credential word is among the words of `text` that touch
/// none of `literals` (a word touches a literal when it overlaps it or
/// ends or starts where it does). `literals` are byte ranges of a whole
/// text in which `text` starts at byte `at`; those outside `text` are not
/// its own. Texts that are the same bytes outside their literals (one
/// shape of a session's, `policy::engine::TextShape`) have the same such
/// words: this is found once per shape, and [`credential_at_literals`]
/// per text.
pub(super) fn credential_outside(statement: &Piece<'_>) -> bool {
    let touches = |w: &Range<usize>| {
        statement
            .literals()
            .any(|l| w.start <= l.end && l.start <= w.end)
    };
    any_credential_word(statement.text.as_bytes(), |w| !touches(&w))
}

/// Whether a credential word is among the words of `text` that touch one
/// of `literals` (as in [`credential_outside`]: the two together find
/// what [`names_a_credential`] finds).
pub(super) fn credential_at_literals(statement: &Piece<'_>) -> bool {
    let bytes = statement.text.as_bytes();
    let is_word = |b: u8| WORD_BYTES[usize::from(b)];
    statement.literals().any(|l| {
        // From the start of the word the literal's first byte is in or
        // follows, to the end of the word its last byte is in or precedes.
        let mut from = l.start;
        while from > 0 && is_word(bytes[from - 1]) {
            from -= 1;
        }
        let mut to = l.end;
        while to < bytes.len() && is_word(bytes[to]) {
            to += 1;
        }
        any_credential_word(&bytes[from..to], |_| true)
    })
}

/// Whether a credential word is among the words of `bytes` (maximal runs
/// of letters, digits and underscores) that `counts` takes.
fn any_credential_word(bytes: &[u8], counts: impl Fn(Range<usize>) -> bool) -> bool {
    // One pass over the bytes (it runs for every recorded statement):
    // only a word whose length and first letter some credential word has
    // is compared (most words of most statements are not).
    let is_word = |b: u8| WORD_BYTES[usize::from(b)];
    let mut i = 0;
    while i < bytes.len() {
        if !is_word(bytes[i]) {
            i += 1;
            continue;
        }
        let begin = i;
        i += 1;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        let w = &bytes[begin..i];
        if may_be_credential_word(w)
            && CREDENTIAL_WORDS
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
            && counts(begin..i)
        {
            return true;
        }
    }
    false
}

/// The bytes of words: ASCII letters, digits and `_`.
const WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

/// For each word length, the first letters of the credential words of
/// that length (bit `n`: the `n`th letter of the alphabet).
const CREDENTIAL_STARTS: [u32; 32] = {
    let mut table = [0u32; 32];
    let mut i = 0;
    while i < CREDENTIAL_WORDS.len() {
        let w = CREDENTIAL_WORDS[i].as_bytes();
        table[w.len()] |= 1 << (w[0].to_ascii_lowercase() - b'a');
        i += 1;
    }
    table
};

/// Whether word `w` has the length and first letter of a credential word.
fn may_be_credential_word(w: &[u8]) -> bool {
    let first = w[0].to_ascii_lowercase();
    w.len() < CREDENTIAL_STARTS.len()
        && first.is_ascii_lowercase()
        && CREDENTIAL_STARTS[w.len()] & (1 << (first - b'a')) != 0
}

/// Whether a prepared statement's parameters may carry a key, password
/// or token (`pgp_sym_decrypt(col, $1)`, `hmac($1, ...)`,
/// `dblink_connect($1)`, a `password` or `api_key` column): its
/// executions are recorded without them. Wider than
/// [`names_a_credential`]: parts of words count.
pub(crate) fn may_bind_a_secret(text: &str) -> bool {
    const PARTS: &[&str] = &[
        "crypt", "pgp_", "hmac", "passw", "secret", "token", "key", "dblink", "auth", "cred",
        "digest", "sign",
    ];
    let lower = text.to_ascii_lowercase();
    names_a_credential(text) || PARTS.iter().any(|p| lower.contains(p))
}

/// A text as logs may show it: with its literals out when it may carry a
/// credential (a log is no place for a password either).
pub fn loggable(dialect: SqlDialect, text: &str) -> std::borrow::Cow<'_, str> {
    if names_a_credential(text) {
        std::borrow::Cow::Owned(literals::scrub_literals(dialect, text))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A statement as records and approvers see it: as sent, or with its
/// literals replaced when it may carry a credential.
pub fn shown_text(
    dialect: SqlDialect,
    statement: &str,
    tags: crate::policy::tags::TagSet,
) -> String {
    let credential =
        tags.iter().any(|t: Tag| t.name().starts_with("dcl.")) || names_a_credential(statement);
    recorded_text(dialect, statement, credential)
}

/// The text a record keeps: as sent, or with its literals replaced when
/// it may carry a credential (roles and users are `dcl.*`).
pub(super) fn recorded_text(dialect: SqlDialect, text: &str, credential: bool) -> String {
    if credential {
        literals::scrub_literals(dialect, text)
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_a_record() {
        for (d, sql) in [
            (
                SqlDialect::Postgres,
                "ALTER USER app WITH PASSWORD 'hunter2'",
            ),
            (
                SqlDialect::Postgres,
                "CREATE ROLE x LOGIN PASSWORD 'md5abcdef0123'",
            ),
            (
                SqlDialect::Mysql,
                "CREATE USER 'a'@'%' IDENTIFIED BY 'hunter2'",
            ),
            (SqlDialect::Mysql, "SET PASSWORD FOR 'a'@'%' = 'hunter2'"),
        ] {
            assert!(names_a_credential(sql), "{sql}");
            let kept = recorded_text(d, sql, true);
            assert!(
                !kept.contains("hunter2") && !kept.contains("md5abc"),
                "{kept}"
            );
        }
        assert!(!names_a_credential("SELECT email FROM users"));
    }

    /// The one-pass scan finds exactly the texts a split into words
    /// finds, over the classification corpus and edge cases.
    #[test]
    fn the_credential_scan_agrees_with_splitting_into_words() {
        fn by_words(text: &str) -> bool {
            text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|w| CREDENTIAL_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)))
        }
        let corpus = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/policy/classify.tsv"
        ))
        .unwrap();
        let mut texts: Vec<String> = corpus.lines().map(str::to_owned).collect();
        texts.extend(
            [
                "password",
                "xpassword",
                "password_x",
                "a.password",
                "crypt(",
                "_crypt",
                "encrypted",
                "CrYpT",
                "pgp_sym_encrypt",
                "master_password=1",
                "é password é",
                "passwordpassword",
                "",
            ]
            .map(str::to_owned),
        );
        let mut found = 0;
        for t in &texts {
            assert_eq!(names_a_credential(t), by_words(t), "{t}");
            found += by_words(t) as usize;
        }
        assert!(found > 5, "{found}");
    }

    /// A text of a repeated shape — the same bytes outside its literals —
    /// is judged by its shape's words away from the literals, found once
    /// on another text of the shape, and its own words at its literals:
    /// together they must find what the whole scan finds, whatever the
    /// literals hold (credential words, their parts, digits and letters
    /// that join the words beside them).
    #[test]
    fn a_shape_scanned_once_and_its_literals_find_what_the_whole_scan_finds() {
        use rand::Rng;
        const PIECES: &[&str] = &[
            "password",
            "PassWord",
            "pass",
            "word",
            "crypt",
            "en",
            "_",
            "1",
            "9x",
            "a",
            " ",
            "\'",
            ".",
            "é",
            "identified",
            "ENCODE",
            "x_password",
            "(",
            ")",
            "--",
            "keyring_key_store",
            "SELECT",
            "=",
            "\n",
        ];
        fn pieces(rng: &mut impl Rng, at_least: usize) -> String {
            let n = rng.random_range(at_least..4);
            (0..n)
                .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                .collect()
        }
        let mut rng = rand::rng();
        let mut found = 0;
        for _ in 0..50_000 {
            let literals = rng.random_range(0..4);
            let constants: Vec<String> = (0..=literals).map(|_| pieces(&mut rng, 0)).collect();
            let text = |rng: &mut rand::rngs::ThreadRng| {
                let mut text = String::new();
                let mut spans = Vec::new();
                for (k, c) in constants.iter().enumerate() {
                    text.push_str(c);
                    if k < literals {
                        let l = pieces(rng, 1);
                        spans.push(text.len()..text.len() + l.len());
                        text.push_str(&l);
                    }
                }
                (text, spans)
            };
            let (a, a_spans) = text(&mut rng);
            let (b, b_spans) = text(&mut rng);
            // Each text as a statement at byte `at` of a longer text,
            // whose literals before it are not its own.
            let at = rng.random_range(0..3);
            let in_whole = |spans: &[Range<usize>]| {
                std::iter::once(0..at)
                    .chain(spans.iter().map(|l| l.start + at..l.end + at))
                    .collect::<Vec<_>>()
            };
            let (a_spans, b_spans) = (in_whole(&a_spans), in_whole(&b_spans));
            let piece = |text, spans| Piece {
                text,
                start: at,
                spans: super::super::shapes::within(spans, &(at..at + text.len())),
            };
            let outside = credential_outside(&piece(&a, &a_spans));
            assert_eq!(
                outside,
                credential_outside(&piece(&b, &b_spans)),
                "{a:?} {b:?}"
            );
            let whole = names_a_credential(&b);
            assert_eq!(
                outside || credential_at_literals(&piece(&b, &b_spans)),
                whole,
                "{a:?} {a_spans:?} / {b:?} {b_spans:?}"
            );
            found += usize::from(whole && !outside);
        }
        // Texts whose only credential words touch their literals.
        assert!(found > 1_000, "{found}");
    }
}
