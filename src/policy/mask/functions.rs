//! Masking functions: what a masked value becomes. They work on the text
//! form of a value (the wire's text format; binary values are decoded to
//! text first by the caller or made NULL).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::policy::literals;
use crate::policy::parse::SqlDialect;

/// A masking function as a rule names it.
#[derive(Debug, Clone)]
pub enum MaskFunction {
    /// A fixed string (`***`) for text, NULL for other types (a number or
    /// date in their place would look true).
    Redact,
    /// SQL NULL.
    Null,
    /// `john.doe@example.com` → `j***@example.com`.
    Email,
    /// Keep the first and last characters, star the rest.
    Keep {
        /// Characters kept at the start.
        first: usize,
        /// Characters kept at the end.
        last: usize,
    },
    /// Keyed HMAC-SHA-256 (hex): deterministic, so joins and GROUP BY still
    /// work, and not reversible without the key.
    Hash,
    /// A regular expression replacement.
    Regex {
        /// The pattern.
        pattern: regex::Regex,
        /// The replacement (`$1` and friends allowed).
        replace: String,
    },
    /// Dates and timestamps: only the year (`1984-01-01`).
    YearOnly,
    /// Numbers rounded to N digits (negative: to tens, hundreds, ...).
    Round(i32),
    /// A SQL text (a definition, another session's statement) with its
    /// literals and comments out (built-in rules only).
    ScrubLiterals(SqlDialect),
    /// A query plan with its literals out (built-in rules only).
    ScrubPlan(SqlDialect),
    /// A column default as `SHOW COLUMNS` prints it (built-in only).
    ScrubDefault(SqlDialect),
}

/// The text that stands for a redacted value.
pub const REDACTED: &str = "***";

/// The key of the `hash` function: a secret (whoever holds it can test
/// guesses against hashed values), so it never prints.
#[derive(Clone)]
pub struct HashKey(std::sync::Arc<[u8]>);

impl HashKey {
    /// A key of these bytes.
    pub fn new(bytes: &[u8]) -> Self {
        HashKey(std::sync::Arc::from(bytes))
    }
}

impl std::ops::Deref for HashKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

/// Why a rule's function is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    /// Not one of the known names or forms.
    #[error("unknown masking function {0:?} (redact, null, email, hash, year_only, {{ keep_first = N }}, {{ keep_last = N }}, {{ regex = \"...\", replace = \"...\" }}, {{ round = N }})")]
    Unknown(String),
    /// A bad regular expression.
    #[error("regex: {0}")]
    Regex(String),
}

impl MaskFunction {
    /// Parses a rule's `function` value: a name, or a table with the
    /// function's parameters.
    pub fn parse(v: &toml::Value) -> Result<MaskFunction, FunctionError> {
        match v {
            toml::Value::String(s) => match s.as_str() {
                "redact" => Ok(MaskFunction::Redact),
                "null" => Ok(MaskFunction::Null),
                "email" => Ok(MaskFunction::Email),
                "hash" => Ok(MaskFunction::Hash),
                "year_only" => Ok(MaskFunction::YearOnly),
                other => Err(FunctionError::Unknown(other.to_owned())),
            },
            toml::Value::Table(t) => {
                let int = |k: &str| t.get(k).and_then(toml::Value::as_integer);
                let keys: Vec<&str> = t.keys().map(String::as_str).collect();
                match keys.as_slice() {
                    ["keep_first"] | ["keep_last"] | ["keep_first", "keep_last"] => {
                        let n = |k| int(k).map_or(Some(0), |v| usize::try_from(v).ok());
                        match (n("keep_first"), n("keep_last")) {
                            (Some(first), Some(last)) => Ok(MaskFunction::Keep { first, last }),
                            _ => Err(FunctionError::Unknown(v.to_string())),
                        }
                    }
                    ["regex", "replace"] => {
                        let (Some(p), Some(r)) = (
                            t.get("regex").and_then(toml::Value::as_str),
                            t.get("replace").and_then(toml::Value::as_str),
                        ) else {
                            return Err(FunctionError::Unknown(v.to_string()));
                        };
                        let pattern = regex::Regex::new(p)
                            .map_err(|e| FunctionError::Regex(e.to_string()))?;
                        Ok(MaskFunction::Regex {
                            pattern,
                            replace: r.to_owned(),
                        })
                    }
                    ["round"] => match int("round").and_then(|n| i32::try_from(n).ok()) {
                        Some(n) => Ok(MaskFunction::Round(n)),
                        None => Err(FunctionError::Unknown(v.to_string())),
                    },
                    _ => Err(FunctionError::Unknown(v.to_string())),
                }
            }
            other => Err(FunctionError::Unknown(other.to_string())),
        }
    }

    /// Masks one value given as bytes of its text form (UTF-8; other
    /// bytes are read lossily) into `out`; the hot path of the relays:
    /// ASCII values, the common case, are masked byte by byte.
    pub fn apply_bytes(&self, value: &[u8], key: &[u8], out: &mut Vec<u8>) -> bool {
        // An OR over the bytes vectorises, where `is_ascii` stops early.
        let ascii = || value.iter().fold(0u8, |a, &c| a | c) < 0x80;
        match self {
            MaskFunction::Redact => out.extend_from_slice(REDACTED.as_bytes()),
            MaskFunction::Null => return false,
            MaskFunction::Keep { first, last } if ascii() => keep_ascii(value, *first, *last, out),
            _ => {
                return match std::str::from_utf8(value) {
                    Ok(text) => self.apply_into(text, key, out),
                    Err(_) => self.apply_into(&String::from_utf8_lossy(value), key, out),
                }
            }
        }
        true
    }

    /// Whether [`MaskFunction::apply_in_place`] can mask this value (the
    /// bytes of its text form): `keep_*` of an ASCII value long enough
    /// to keep its length.
    pub fn fits_in_place(&self, value: &[u8]) -> bool {
        match self {
            MaskFunction::Keep { first, last } => {
                value.len() > first + last && value.iter().fold(0u8, |a, &c| a | c) < 0x80
            }
            _ => false,
        }
    }

    /// Masks a value where it lies (after [`MaskFunction::fits_in_place`]).
    pub fn apply_in_place(&self, value: &mut [u8]) {
        if let MaskFunction::Keep { first, last } = self {
            let end = value.len() - last;
            star_ascii(&mut value[*first..end]);
        }
    }

    /// Masks one value (text form) into `out`, without allocating for
    /// the common functions; `false` is SQL NULL (nothing written).
    pub fn apply_into(&self, value: &str, key: &[u8], out: &mut Vec<u8>) -> bool {
        match self {
            MaskFunction::Redact => out.extend_from_slice(REDACTED.as_bytes()),
            MaskFunction::Null => return false,
            MaskFunction::Keep { first, last } => keep_into(value, *first, *last, out),
            MaskFunction::Email => match value.rsplit_once('@') {
                Some((local, domain)) => {
                    if let Some(c) = local.chars().next() {
                        let mut b = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    }
                    out.extend_from_slice(b"***@");
                    out.extend_from_slice(domain.as_bytes());
                }
                None => out.extend_from_slice(REDACTED.as_bytes()),
            },
            other => match other.apply(value, key) {
                Some(s) => out.extend_from_slice(s.as_bytes()),
                None => return false,
            },
        }
        true
    }

    /// Masks one value (text form); `None` is SQL NULL. `key` is the
    /// gateway's hashing key.
    pub fn apply(&self, value: &str, key: &[u8]) -> Option<String> {
        Some(match self {
            MaskFunction::Redact => REDACTED.to_owned(),
            MaskFunction::Null => return None,
            MaskFunction::Email => match value.rsplit_once('@') {
                Some((local, domain)) => {
                    let first: String = local.chars().take(1).collect();
                    format!("{first}***@{domain}")
                }
                None => REDACTED.to_owned(),
            },
            MaskFunction::Keep { first, last } => keep(value, *first, *last),
            MaskFunction::Hash => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(value.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            MaskFunction::Regex { pattern, replace } => {
                pattern.replace_all(value, replace.as_str()).into_owned()
            }
            MaskFunction::YearOnly => {
                let year: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
                if year.len() == 4 {
                    format!("{year}-01-01")
                } else {
                    return None;
                }
            }
            MaskFunction::Round(digits) => match value.trim().parse::<f64>() {
                Ok(x) => {
                    let f = 10f64.powi(*digits);
                    let r = (x * f).round() / f;
                    if *digits <= 0 {
                        format!("{r:.0}")
                    } else {
                        format!("{r:.*}", *digits as usize)
                    }
                }
                Err(_) => return None,
            },
            MaskFunction::ScrubLiterals(d) => literals::scrub_text_or_array(*d, value),
            MaskFunction::ScrubPlan(d) => literals::scrub_plan(*d, value),
            MaskFunction::ScrubDefault(d) => literals::scrub_default(*d, value),
        })
    }

    /// The function as a rule writes it.
    pub fn describe(&self) -> String {
        match self {
            MaskFunction::Redact => "redact".to_owned(),
            MaskFunction::Null => "null".to_owned(),
            MaskFunction::Email => "email".to_owned(),
            MaskFunction::Keep { first, last } => match (first, last) {
                (f, 0) => format!("keep_first = {f}"),
                (0, l) => format!("keep_last = {l}"),
                (f, l) => format!("keep_first = {f}, keep_last = {l}"),
            },
            MaskFunction::Hash => "hash".to_owned(),
            MaskFunction::Regex { pattern, replace } => {
                format!("regex = {:?}, replace = {replace:?}", pattern.as_str())
            }
            MaskFunction::YearOnly => "year_only".to_owned(),
            MaskFunction::Round(n) => format!("round = {n}"),
            MaskFunction::ScrubLiterals(_) => "literals replaced".to_owned(),
            MaskFunction::ScrubPlan(_) => "plan literals replaced".to_owned(),
            MaskFunction::ScrubDefault(_) => "default replaced".to_owned(),
        }
    }

    /// Whether the masked value still has the column's type (so the
    /// column's metadata can stay as it is): text functions on text
    /// columns, `year_only` on dates, `round` on numbers, `null` always.
    pub fn keeps_type(&self, textual: bool) -> bool {
        match self {
            MaskFunction::Null | MaskFunction::YearOnly | MaskFunction::Round(_) => true,
            _ => textual,
        }
    }
}

/// [`keep`] into a buffer, without collecting characters (ASCII values,
/// the common case, byte by byte).
fn keep_into(value: &str, first: usize, last: usize, out: &mut Vec<u8>) {
    if !value.is_ascii() {
        out.extend_from_slice(keep(value, first, last).as_bytes());
        return;
    }
    keep_ascii(value.as_bytes(), first, last, out)
}

/// [`keep`] of an ASCII value.
fn keep_ascii(b: &[u8], first: usize, last: usize, out: &mut Vec<u8>) {
    if first + last >= b.len() {
        out.resize(out.len() + b.len().max(3), b'*');
        return;
    }
    let start = out.len();
    out.extend_from_slice(b);
    star_ascii(&mut out[start + first..start + b.len() - last]);
}

/// Stars the letters and digits of ASCII text, keeping separators.
fn star_ascii(b: &mut [u8]) {
    for c in b {
        // Branch-free, so that the loop vectorises.
        let alnum = c.is_ascii_alphanumeric() as u8;
        *c = alnum * b'*' + (1 - alnum) * *c;
    }
}

/// Keeps `first` leading and `last` trailing characters, stars the rest;
/// short values are starred whole so that nothing is revealed.
fn keep(value: &str, first: usize, last: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if first + last >= chars.len() {
        return "*".repeat(chars.len().max(3));
    }
    let mut out: String = chars[..first].iter().collect();
    for c in &chars[first..chars.len() - last] {
        // Keep separators, so `123-45-6789` becomes `***-**-6789`.
        out.push(if c.is_alphanumeric() { '*' } else { *c });
    }
    out.extend(&chars[chars.len() - last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &str) -> MaskFunction {
        MaskFunction::parse(&toml::from_str::<toml::Table>(&format!("f = {v}")).unwrap()["f"])
            .unwrap()
    }

    #[test]
    fn the_issue_examples() {
        assert_eq!(
            f("\"email\"").apply("john.doe@example.com", b"k").unwrap(),
            "j***@example.com"
        );
        assert_eq!(
            f("{ keep_last = 4 }").apply("123-45-6789", b"k").unwrap(),
            "***-**-6789"
        );
        assert_eq!(f("\"redact\"").apply("4111 1111", b"k").unwrap(), REDACTED);
        assert_eq!(f("\"null\"").apply("100000", b"k"), None);
        assert_eq!(
            f("{ keep_first = 2, keep_last = 2 }")
                .apply("abcdefgh", b"k")
                .unwrap(),
            "ab****gh"
        );
        assert_eq!(
            f("\"year_only\"").apply("1984-07-12", b"k").unwrap(),
            "1984-01-01"
        );
        assert_eq!(
            f("{ round = -3 }").apply("123456.78", b"k").unwrap(),
            "123000"
        );
        assert_eq!(f("{ round = 1 }").apply("2.46", b"k").unwrap(), "2.5");
        assert_eq!(
            f("{ regex = \"[0-9]\", replace = \"#\" }")
                .apply("ab12", b"k")
                .unwrap(),
            "ab##"
        );
    }

    #[test]
    fn the_hash_key_never_prints() {
        let key = HashKey::new(b"k3y-material");
        let shown = format!("{key:?} {:?}", MaskFunction::Hash);
        assert!(!shown.contains("k3y") && !shown.contains("107"), "{shown}");
        assert_eq!(&*key, b"k3y-material");
    }

    #[test]
    fn apply_into_agrees_with_apply() {
        for func in [
            "\"email\"",
            "{ keep_last = 4 }",
            "{ keep_first = 1, keep_last = 2 }",
            "\"redact\"",
            "\"hash\"",
        ] {
            let f = f(func);
            for v in [
                "john.doe@example.com",
                "123-45-6789",
                "ab",
                "",
                "çà-日本語-x@é",
            ] {
                let mut out = Vec::new();
                let some = f.apply_into(v, b"k", &mut out);
                assert_eq!(
                    f.apply(v, b"k"),
                    some.then(|| String::from_utf8(out).unwrap()),
                    "{func} {v}"
                );
                if f.fits_in_place(v.as_bytes()) {
                    let mut b = v.as_bytes().to_vec();
                    f.apply_in_place(&mut b);
                    assert_eq!(
                        f.apply(v, b"k").unwrap().as_bytes(),
                        b,
                        "in place: {func} {v}"
                    );
                }
                let mut bytes = Vec::new();
                let some = f.apply_bytes(v.as_bytes(), b"k", &mut bytes);
                assert_eq!(
                    f.apply(v, b"k"),
                    some.then(|| String::from_utf8(bytes).unwrap()),
                    "bytes: {func} {v}"
                );
            }
        }
    }

    #[test]
    fn hashes_are_keyed_and_deterministic() {
        let h = f("\"hash\"");
        assert_eq!(h.apply("x", b"key1"), h.apply("x", b"key1"));
        assert_ne!(h.apply("x", b"key1"), h.apply("x", b"key2"));
        assert_ne!(h.apply("x", b"key1"), h.apply("y", b"key1"));
        assert_eq!(h.apply("x", b"key1").unwrap().len(), 64);
    }

    #[test]
    fn short_values_reveal_nothing_and_bad_functions_are_errors() {
        assert_eq!(f("{ keep_last = 4 }").apply("12", b"k").unwrap(), "***");
        for bad in [
            "\"rot13\"",
            "{ keep_middle = 1 }",
            "{ regex = \"(\", replace = \"\" }",
            "3",
        ] {
            let v = toml::from_str::<toml::Table>(&format!("f = {bad}")).unwrap();
            assert!(MaskFunction::parse(&v["f"]).is_err(), "{bad}");
        }
    }
}
