//! The JSON of the two events every read records — a statement that
//! references its definition, and an outcome with its result sample —
//! written by hand, the outcome straight from what the relay lends (no
//! [`super::OutcomeEvent`] is built for it). Why: through `serde_json` each field's key is escaped
//! byte by byte and every piece is a call of its own; these two events
//! are most of what a session encodes. The bytes are exactly what
//! `serde_json` writes for the same event (a test holds them to it), so
//! readers and stored trails do not change.
//!
//! This module must never write anything `serde_json` would not: a new
//! field of these events must be added here too (the test fails until it
//! is).

use sqlgate_net::outcome::{Outcome, ResultSample};

use super::Reference;

/// Writes `s` as a JSON string, escaped as `serde_json` escapes it.
fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most statements and values have no byte to escape at all: one
    // look at each word, one copy.
    if escapes_nothing(bytes) {
        out.extend_from_slice(bytes);
    } else {
        escaped(out, bytes);
    }
    out.push(b'"');
}

/// Whether no byte of `bytes` is one JSON escapes (never `true` when one
/// is).
fn escapes_nothing(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        // Short (tags, numbers, names): one word, padded with a byte
        // that is never escaped.
        let mut word = [b'a'; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        return !any_escaped(u64::from_le_bytes(word));
    }
    let word = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let mut at = 0;
    while at + 8 <= bytes.len() {
        if any_escaped(word(at)) {
            return false;
        }
        at += 8;
    }
    // The tail as the last eight bytes (some of them seen already).
    at == bytes.len() || !any_escaped(word(bytes.len() - 8))
}

fn must_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `bytes` with each byte JSON escapes escaped.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !must_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xF)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes of `word` is one JSON escapes: below
/// 0x20, `"` or `\`. Never `false` when one is (a `true` without one
/// only sends the bytes through the byte-by-byte path).
fn any_escaped(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (n ≤ 0x80) leaves its high bit set in
    // `(w - n·ONES) & !w & HIGH` (the classic "has less" test); a zero
    // byte is one below 1.
    let below = |w: u64, n: u64| w.wrapping_sub(n * ONES) & !w & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (u64::from(b'"') * ONES), 1);
    let backslash = below(word ^ (u64::from(b'\\') * ONES), 1);
    control | quote | backslash != 0
}

fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn optional(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `[x, ...]`: each of `items` as `item` writes it.
fn list<T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = T>,
    mut item: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, x) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
}

/// `[v, ...]` of optional strings.
fn values(out: &mut Vec<u8>, values: sqlgate_net::parameters::Parameters<'_>) {
    out.push(b'[');
    let mut first = true;
    values.each(|v| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        optional(out, v);
    });
    out.push(b']');
}

/// A statement that references its definition.
pub(super) fn reference(out: &mut Vec<u8>, r: &Reference<'_>) {
    out.extend_from_slice(b"{\"d\":");
    number(out, r.d);
    if let Some(text) = r.text {
        out.extend_from_slice(b",\"text\":");
        string(out, text);
    }
    if let Some(literals) = r.literals {
        out.extend_from_slice(b",\"literals\":");
        list(out, literals.each(), string);
    }
    if let Some(p) = r.parameters {
        out.extend_from_slice(b",\"parameters\":");
        values(out, p);
    }
    out.push(b'}');
}

/// What the server made of a statement, with its result sample unless
/// `sample` is false: the JSON of the [`super::OutcomeEvent`] it stands
/// for.
pub(super) fn outcome(out: &mut Vec<u8>, o: &Outcome<'_>, sample: bool) {
    match o {
        Outcome::Done {
            tag,
            rows,
            bytes,
            sample: kept,
        } => {
            out.extend_from_slice(b"{\"tag\":");
            string(out, tag);
            out.extend_from_slice(b",\"rows\":");
            number(out, *rows);
            out.extend_from_slice(b",\"bytes\":");
            number(out, *bytes);
            if let Some(result) = kept.as_deref().filter(|_| sample) {
                out.extend_from_slice(b",\"result\":");
                result_rows(out, result);
            }
        }
        Outcome::Failed {
            code,
            message,
            bytes,
        } => {
            out.extend_from_slice(b"{\"tag\":null,\"rows\":0,\"code\":");
            string(out, code);
            out.extend_from_slice(b",\"message\":");
            string(out, message);
            out.extend_from_slice(b",\"bytes\":");
            number(out, *bytes);
        }
    }
    out.push(b'}');
}

fn result_rows(out: &mut Vec<u8>, r: &ResultSample) {
    out.extend_from_slice(b"{\"columns\":");
    list(out, r.columns.iter(), |out, c| string(out, c));
    out.extend_from_slice(b",\"rows\":");
    list(out, r.rows(), |out, row| list(out, row.values(), optional));
    if r.truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{OutcomeEvent, ResultRows};
    use rand::Rng;

    /// A string of every kind of character JSON escapes, and others.
    fn text(rng: &mut impl Rng) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\u{8}", "\u{c}", "\u{0}", "\u{1f}",
            "\u{7f}", "é", "→", "𝄞", "'", "/", "SELECT 1", "\u{2028}",
        ];
        let n = rng.random_range(0..40);
        (0..n)
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }

    fn maybe(rng: &mut impl Rng) -> Option<String> {
        rng.random_bool(0.7).then(|| text(rng))
    }

    fn values(rng: &mut impl Rng) -> Vec<Option<String>> {
        (0..rng.random_range(0..4)).map(|_| maybe(rng)).collect()
    }

    #[test]
    fn the_word_test_finds_every_escaped_byte() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = b;
                let escaped = b < 0x20 || b == b'"' || b == b'\\';
                if escaped {
                    assert!(any_escaped(u64::from_le_bytes(word)), "{b:#x} at {at}");
                }
            }
        }
        assert!(!any_escaped(u64::from_le_bytes(*b"SELECT a")));
        assert!(!any_escaped(u64::from_le_bytes([
            0x7f, 0xff, 0x80, 0x20, b'!', b'#', b'[', b']'
        ])));
    }

    #[test]
    fn a_text_escapes_nothing_only_when_no_byte_of_it_is_escaped() {
        for len in 1..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(
                        escapes_nothing(&bytes),
                        !must_escape(b),
                        "{b:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(escapes_nothing(b""));
    }

    #[test]
    fn the_hot_events_are_written_as_serde_json_writes_them() {
        let mut rng = rand::rng();
        for _ in 0..5_000 {
            let parameters = values(&mut rng);
            let t = text(&mut rng);
            // Literals: pieces of a text at char boundaries.
            let whole = text(&mut rng);
            let mut bounds: Vec<usize> = (0..rng.random_range(0..6))
                .map(|_| rng.random_range(0..=whole.len()))
                .filter(|&i| whole.is_char_boundary(i))
                .collect();
            bounds.sort_unstable();
            let spans: Vec<_> = bounds.chunks_exact(2).map(|p| p[0]..p[1]).collect();
            let r = Reference {
                d: rng.random(),
                text: rng.random_bool(0.8).then_some(t.as_str()),
                literals: rng.random_bool(0.5).then_some(crate::store::Literals {
                    text: &whole,
                    spans: &spans,
                }),
                parameters: rng
                    .random_bool(0.5)
                    .then_some(sqlgate_net::parameters::Parameters::Values(&parameters)),
            };
            let mut out = Vec::new();
            reference(&mut out, &r);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&r).unwrap()
            );
            let result = rng.random_bool(0.6).then(|| ResultRows {
                columns: (0..rng.random_range(0..3))
                    .map(|_| text(&mut rng))
                    .collect(),
                rows: (0..rng.random_range(0..3))
                    .map(|_| values(&mut rng))
                    .collect(),
                truncated: rng.random(),
            });
            let keep = rng.random_bool(0.8);
            let (o, e) = if rng.random_bool(0.8) {
                let (tag, rows, bytes) = (text(&mut rng), rng.random(), rng.random());
                let sample = result.as_ref().map(|r| {
                    let rows = r.rows.iter().map(|row| row.iter().map(|v| v.as_deref()));
                    ResultSample::new(r.columns.clone(), rows, r.truncated)
                });
                let e = OutcomeEvent {
                    tag: Some(tag.clone()),
                    rows,
                    code: None,
                    message: None,
                    bytes,
                    result: result.filter(|_| keep),
                };
                let o = Outcome::Done {
                    tag: tag.into(),
                    rows,
                    bytes,
                    sample: sample.map(std::borrow::Cow::Owned),
                };
                (o, e)
            } else {
                let (code, message, bytes) = (text(&mut rng), text(&mut rng), rng.random());
                let e = OutcomeEvent {
                    tag: None,
                    rows: 0,
                    code: Some(code.clone()),
                    message: Some(message.clone()),
                    bytes,
                    result: None,
                };
                let o = Outcome::Failed {
                    code,
                    message,
                    bytes,
                };
                (o, e)
            };
            let mut out = Vec::new();
            outcome(&mut out, &o, keep);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&e).unwrap()
            );
        }
    }
}
