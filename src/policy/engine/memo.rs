//! A session's recent statement shapes. Why: clients repeat their
//! statements with new literals (pgbench, an agent's tool loop, an ORM's
//! simple-protocol path), and such a text is the same as one the session
//! sent before except inside its literals. Checking that costs a
//! comparison of its bytes; fingerprinting it, hashing it twice and
//! looking it up in the two shared caches (`cache.rs`) cost several
//! thousand instructions per statement.
//!
//! This module must never hand out a classification that a fresh
//! classification of the text would not give. A text matches a
//! remembered one only when:
//! - the remembered classification stood for every text of its exact
//!   fingerprint (`Engine::classify_shaped`);
//! - outside the remembered text's literals, the bytes are the same;
//! - each literal is of the same kind, written so that every reader
//!   (this scanner, sqlparser, the server) takes it whole and alike:
//!   digits for digits (a point where the remembered one had it), a
//!   single-quoted string of plain ASCII — no quote, backslash, `$`,
//!   comment or control character inside — for a string.
//!
//! Such a text has the remembered fingerprint, is as exact and as free of
//! lexer hazards, and its statements stand where the remembered ones
//! stood, moved by the literals' change of length.
//!
//! A text whose classification is its own (no literals, as `BEGIN`; or a
//! classification that depends on its literals' values) is remembered
//! whole, without literals: only the same bytes match it.
//!
//! The recording relies on the same: it scans a shape's words away from
//! its literals for credential words once (`recording/shapes.rs`). A
//! looser match here (case, whitespace, comments) would let a later text
//! carry a credential word that scan never saw.

use std::ops::Range;
use std::sync::Arc;

use crate::policy::classify::StatementRisk;
use crate::policy::fingerprint::{Fingerprint, Literal, LiteralKind};

/// Shapes a session remembers. sysbench's read-only mix alternates
/// between 20 with literals, pgbench's TPC-B between 7; with 16, a fifth
/// of sysbench's texts missed, each miss costing a fingerprint, a shared
/// cache lookup and a fresh reach check (about 7k instructions). Trying
/// a shape that does not match compares the bytes before its first
/// literal, so a text matching none costs about 50 instructions a shape.
const REMEMBERED: usize = 32;
/// Texts longer than this are not remembered (at most 32 KiB of texts
/// per session; long texts are rarely repeated with new literals).
const MAX_TEXT: usize = 1024;
/// A literal longer than this is not taken for a remembered one's (the
/// scanner calls a number past 18 digits inexact).
const MAX_NUMBER: usize = 18;
/// Hits counted in the engine's cache statistics at a time (one lock per
/// this many statements).
const COUNT_EVERY: u64 = 64;

/// One remembered text.
#[derive(Debug, Clone)]
struct Remembered {
    /// Its number in the session (never reused): what a session's other
    /// parts key their own notes on a shape by.
    id: u64,
    text: Box<[u8]>,
    literals: Box<[Literal]>,
    /// Its classification, at its own spans.
    classified: Arc<[StatementRisk]>,
    /// Per statement, once checked: the database outside the session's
    /// that it names, if any (`policy::reach`; kept only for statements
    /// whose check reads names alone, which literals never change).
    reach: Vec<Option<Option<String>>>,
}

/// A session's recent shapes, the most used first: a shape that matches
/// moves one place forward, and a new shape takes the last place once
/// all are taken.
#[derive(Debug, Default, Clone)]
pub(super) struct ShapeMemo {
    remembered: Vec<Remembered>,
    /// Hits not yet counted in the engine's statistics: of shapes with
    /// literals (the engine counts them as served by fingerprint), and of
    /// texts remembered whole (served by text).
    pub(super) uncounted: [u64; 2],
    /// The entry the text being judged matched or was remembered as.
    current: Option<usize>,
    /// Where the literals of the text being judged are (bytes), when it
    /// has a current entry.
    spans: Vec<Range<usize>>,
    /// How they moved (kept, like `spans`, so that trying each
    /// remembered text allocates nothing).
    deltas: Deltas,
    /// The number the next remembered text takes.
    next_id: u64,
}

/// Per literal: its change of length in bytes and in characters, from a
/// remembered text's to the text being judged.
type Deltas = Vec<(isize, isize)>;

/// The shape of the text just judged, for a session's other parts (the
/// recording keeps what it found in a shape's constant bytes once).
#[derive(Debug, Clone, Copy)]
pub struct TextShape<'m> {
    /// The remembered text's number: every text of this number is the
    /// same bytes outside its literals.
    pub id: u64,
    /// Where this text's literals are (bytes, in order); every byte
    /// outside them is the same in every text of the shape.
    pub literals: &'m [Range<usize>],
}

impl ShapeMemo {
    /// The classification of `text` when it matches a remembered text
    /// (see the module's doc).
    pub(super) fn recall(&mut self, text: &[u8]) -> Option<Arc<[StatementRisk]>> {
        self.current = None;
        if text.len() > MAX_TEXT {
            return None;
        }
        let (spans, deltas) = (&mut self.spans, &mut self.deltas);
        let i = self
            .remembered
            .iter()
            .position(|r| matches(r, text, spans, deltas))?;
        self.uncounted[usize::from(self.remembered[i].literals.is_empty())] += 1;
        let at = i.saturating_sub(1);
        self.remembered.swap(i, at);
        self.current = Some(at);
        let r = &self.remembered[at];
        if self.deltas.iter().all(|&d| d == (0, 0)) {
            return Some(r.classified.clone());
        }
        Some(shifted(r, &self.deltas))
    }

    /// Remembers `text`, whose classification stands for every text of
    /// its fingerprint `f`.
    pub(super) fn remember(
        &mut self,
        text: &[u8],
        f: &Fingerprint,
        classified: &Arc<[StatementRisk]>,
    ) {
        if f.exact {
            self.keep(text, &f.literals, classified);
        }
    }

    /// Remembers `text` whole, as its own classification: it matches the
    /// same bytes only (a text without literals, as `BEGIN`, or one whose
    /// classification does not stand for its fingerprint's other texts).
    pub(super) fn remember_whole(&mut self, text: &[u8], classified: &Arc<[StatementRisk]>) {
        self.keep(text, &[], classified);
    }

    fn keep(&mut self, text: &[u8], literals: &[Literal], classified: &Arc<[StatementRisk]>) {
        if text.len() > MAX_TEXT {
            return;
        }
        self.next_id += 1;
        let entry = Remembered {
            id: self.next_id,
            text: text.into(),
            literals: literals.into(),
            classified: classified.clone(),
            reach: vec![None; classified.len()],
        };
        if self.remembered.len() == REMEMBERED {
            self.remembered.pop();
        }
        self.current = Some(self.remembered.len());
        self.spans.clear();
        self.spans
            .extend(entry.literals.iter().map(|l| l.bytes.clone()));
        self.remembered.push(entry);
    }

    /// The shape of the text just judged, when it was recalled or
    /// remembered.
    pub(super) fn current(&self) -> Option<TextShape<'_>> {
        Some(TextShape {
            id: self.remembered[self.current?].id,
            literals: &self.spans,
        })
    }

    /// Statement `i` of the text being judged: what its reach check
    /// found, when it was checked for a text of the same shape.
    pub(super) fn reach(&self, i: usize) -> Option<&Option<String>> {
        let r = &self.remembered[self.current?];
        r.reach.get(i)?.as_ref()
    }

    /// Keeps what statement `i`'s reach check found, for the texts of the
    /// same shape (its caller: only for a check that read names alone).
    pub(super) fn keep_reach(&mut self, i: usize, outside: Option<String>) {
        if let Some(slot) = self
            .current
            .and_then(|c| self.remembered[c].reach.get_mut(i))
        {
            *slot = Some(outside);
        }
    }

    /// Whether enough hits wait to be counted.
    pub(super) fn count_due(&self) -> bool {
        self.uncounted[0] + self.uncounted[1] >= COUNT_EVERY
    }
}

/// Whether `text` is `r`'s text with other literals (`spans`: where they
/// are in `text`; `deltas`: how they moved).
fn matches(
    r: &Remembered,
    text: &[u8],
    spans: &mut Vec<Range<usize>>,
    deltas: &mut Deltas,
) -> bool {
    literals_at(r, text, spans, deltas).is_some()
}

/// [`matches`], with `?` for each way a text can differ.
fn literals_at(
    r: &Remembered,
    text: &[u8],
    spans: &mut Vec<Range<usize>>,
    deltas: &mut Deltas,
) -> Option<()> {
    let old = &*r.text;
    deltas.clear();
    spans.clear();
    // Where the next constant piece starts, in the old and the new text.
    let (mut from_old, mut from_new) = (0, 0);
    for l in r.literals.iter() {
        let piece = l.bytes.start - from_old;
        if text.get(from_new..from_new + piece)? != &old[from_old..l.bytes.start] {
            return None;
        }
        let start = from_new + piece;
        let len = literal_len(l.kind, &text[start..])?;
        // (Lengths of texts: far below `isize::MAX`.)
        deltas.push((
            len as isize - l.bytes.len() as isize,
            len as isize - l.chars.len() as isize,
        ));
        spans.push(start..start + len);
        from_old = l.bytes.end;
        from_new = start + len;
    }
    (text.get(from_new..)? == &old[from_old..]).then_some(())
}

/// The length of the literal of `kind` at the start of `rest`, when
/// every reader takes it as such.
fn literal_len(kind: LiteralKind, rest: &[u8]) -> Option<usize> {
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    match kind {
        LiteralKind::Integer => {
            let n = digits(0);
            (1..=MAX_NUMBER).contains(&n).then_some(n)
        }
        LiteralKind::Decimal => {
            // Digits, a point, digits: an exact fingerprint's decimals
            // have digits on both sides.
            let whole = digits(0);
            if whole == 0 || rest.get(whole) != Some(&b'.') {
                return None;
            }
            let n = whole + 1 + digits(whole + 1);
            (n > whole + 1 && n <= MAX_NUMBER).then_some(n)
        }
        LiteralKind::String => {
            if rest.first() != Some(&b'\'') {
                return None;
            }
            let inside = rest[1..].iter().take_while(|&&b| plain(b)).count();
            // The quote that closes it must follow, and not be doubled.
            (rest.get(1 + inside) == Some(&b'\'') && rest.get(2 + inside) != Some(&b'\''))
                .then_some(inside + 2)
        }
    }
}

/// A byte that every reader takes as itself inside a string, and that no
/// lexer hazard check looks for: printable ASCII but the quotes (`'`,
/// `"`, `` ` ``), backslash, `$`, `#`, `-`, `*`, `/` and `!`.
fn plain(b: u8) -> bool {
    (b' '..=b'~').contains(&b) && !b"'\"\\$#-*/!`".contains(&b)
}

/// `r`'s classification at the spans of the text whose literals moved
/// by `deltas`.
fn shifted(r: &Remembered, deltas: &[(isize, isize)]) -> Arc<[StatementRisk]> {
    // A position after a literal moves by the change of every literal
    // that ends at or before it (statements start and end at tokens, never
    // inside a literal).
    let at = |p: usize, end: fn(&Literal) -> usize, delta: fn(&(isize, isize)) -> isize| {
        let moved_by: isize = r
            .literals
            .iter()
            .zip(deltas)
            .filter(|(l, _)| end(l) <= p)
            .map(|(_, d)| delta(d))
            .sum();
        p.saturating_add_signed(moved_by)
    };
    let bytes_at = |p| at(p, |l| l.bytes.end, |d| d.0);
    let chars_at = |p| at(p, |l| l.chars.end, |d| d.1);
    r.classified
        .iter()
        .map(|s| StatementRisk {
            start: chars_at(s.start),
            end: chars_at(s.end),
            bytes: bytes_at(s.bytes.start)..bytes_at(s.bytes.end),
            ..s.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests;
