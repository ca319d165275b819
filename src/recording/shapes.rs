//! What the recording finds once per statement of a session's repeated
//! shape (`policy::engine::TextShape`: texts that are the same bytes
//! outside their literals). Why: a client that repeats its statements
//! with new literals had each text scanned whole for credential words and
//! its definition looked up by hashing its fingerprint; for a repeated
//! shape only the words at its literals can differ, and its definition
//! does not change.
//!
//! This module must never answer for a text of another shape or for
//! another statement: notes are keyed by the shape's number (a session
//! never reuses one), the statement's place in the text and the text's
//! origin; and a cached definition is used only for the verdict, tags
//! and deciding rule it was found for.

use std::ops::Range;

use crate::policy::rules::Verdict;
use crate::policy::tags::TagSet;

/// Notes a session keeps (the most recently used; a shape has one per
/// statement).
const KEPT: usize = 32;

/// One statement of one shape.
#[derive(Debug)]
pub(super) struct Note {
    shape: u64,
    statement: usize,
    origin: &'static str,
    /// A credential word is among the statement's words that touch none
    /// of its literals.
    pub credential_outside: bool,
    /// The session's definition its statements referenced last.
    pub defined: Option<Defined>,
    /// Texts of the shape noted (saturating).
    seen: u32,
    /// When it was last used (`ShapeNotes::tick`).
    used: u64,
}

/// A definition found for a statement of a shape, and what it was found
/// for (a policy reload may change the verdict of the same text). Kept
/// only for statements that mask nothing: their masked columns are not
/// compared.
#[derive(Debug)]
pub(super) struct Defined {
    pub d: u32,
    pub verdict: Verdict,
    pub tags: TagSet,
    /// The deciding rule, as recorded (`rule (entry)`).
    pub rule: Option<String>,
    /// The shape's template definition, once one was made (for the
    /// same verdict, tags and rule: it goes with them).
    pub template: Option<Template>,
}

/// A statement's text kept as a template definition: the statements of
/// its shape record their literals only. Why: their text was most of a
/// read's record, and the same bytes each time outside its literals.
#[derive(Debug)]
pub(super) struct Template {
    /// The template definition's number.
    pub d: u32,
    text: Box<str>,
    /// Its literals' byte ranges, ascending.
    spans: Box<[Range<usize>]>,
}

/// Statements longer than this, or with more literals, are not made
/// templates (a note's memory stays small: 32 notes hold at most 48 KiB
/// of templates; long texts rarely repeat).
pub(super) const MAX_TEMPLATE: usize = 1024;
const MAX_TEMPLATE_LITERALS: usize = 32;

impl Template {
    /// A template of `statement` (`None` when it has no literal, is too
    /// long, or its spans are not ascending ranges within it).
    pub(super) fn of(statement: &Piece<'_>) -> Option<Template> {
        if statement.spans.is_empty()
            || statement.spans.len() > MAX_TEMPLATE_LITERALS
            || statement.text.len() > MAX_TEMPLATE
        {
            return None;
        }
        let mut own = Vec::with_capacity(statement.spans.len());
        let mut from = 0;
        for s in statement.spans {
            let s = statement.own(s)?;
            if s.start < from {
                return None;
            }
            from = s.end;
            own.push(s);
        }
        Some(Template {
            d: 0,
            text: statement.text.into(),
            spans: own.into(),
        })
    }

    /// Its text, and its literals' ranges in it (for its definition).
    pub(super) fn parts(&self) -> (&str, &[Range<usize>]) {
        (&self.text, &self.spans)
    }

    /// Whether `statement` is this template with other literals (see
    /// [`fits`]).
    pub(super) fn fits(&self, statement: &Piece<'_>) -> bool {
        fits(&self.text, self.spans.iter().cloned(), statement)
    }
}

/// Whether `statement` is `template` (its literals at `spans`, ascending)
/// with other literals: as many, ascending, within it, and every byte
/// between and around them the same. Then the template with each of its
/// literals replaced by the statement's, in turn, is the statement
/// exactly.
pub(super) fn fits(
    template: &str,
    spans: impl ExactSizeIterator<Item = Range<usize>>,
    statement: &Piece<'_>,
) -> bool {
    if statement.spans.len() != spans.len() {
        return false;
    }
    let (text, own_text) = (statement.text.as_bytes(), template.as_bytes());
    let (mut from, mut own_from) = (0, 0);
    for (s, own) in statement.spans.iter().zip(spans) {
        let Some(s) = statement.own(s).filter(|s| s.start >= from) else {
            return false;
        };
        let (Some(gap), Some(own_gap)) =
            (text.get(from..s.start), own_text.get(own_from..own.start))
        else {
            return false;
        };
        if gap != own_gap || own.end < own.start {
            return false;
        }
        from = s.end;
        own_from = own.end;
    }
    text.get(from..) == own_text.get(own_from..)
}

/// A statement of a text, and its literals.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece<'a> {
    /// The statement.
    pub text: &'a str,
    /// Where it starts in the whole text.
    pub start: usize,
    /// Its literals: ranges of the whole text, ascending.
    pub spans: &'a [Range<usize>],
}

impl Piece<'_> {
    /// Its literals, as ranges of the statement.
    pub(super) fn literals(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.spans.iter().filter_map(|s| self.own(s))
    }

    /// Literal `span` as a range of the statement (`None`: it is not one,
    /// at character boundaries).
    fn own(&self, span: &Range<usize>) -> Option<Range<usize>> {
        let own = span.start.checked_sub(self.start)?..span.end.checked_sub(self.start)?;
        self.text.get(own.clone())?;
        Some(own)
    }
}

/// The spans of `all` (ascending ranges of a whole text) within statement
/// bytes `statement` (none straddles its edges: see [`straddles`]).
pub(super) fn within<'a>(all: &'a [Range<usize>], statement: &Range<usize>) -> &'a [Range<usize>] {
    let first = all.partition_point(|l| l.start < statement.start);
    let end = all.partition_point(|l| l.start < statement.end);
    all.get(first..end).unwrap_or_default()
}

/// A session's notes.
#[derive(Debug, Default)]
pub(super) struct ShapeNotes {
    notes: Vec<Note>,
    /// Counts the notes' uses: the least recently used goes when a new
    /// one needs its place (a shape in use keeps its note, and its
    /// template, among shapes that come once).
    tick: u64,
    /// Templates this session made; past [`MAX_TEMPLATES`], or once the
    /// session's definitions ran out, it makes none.
    templates: usize,
    templates_full: bool,
}

/// Templates a session makes at most (a quarter of its definitions: its
/// other statement shapes keep room).
const MAX_TEMPLATES: usize = 128;

impl ShapeNotes {
    /// Where the note of statement `statement` of shape `shape` sent as
    /// `origin` is; made with `outside` (the statement's credential words
    /// away from its literals) when there is none.
    pub(super) fn note(
        &mut self,
        shape: u64,
        statement: usize,
        origin: &'static str,
        outside: impl FnOnce() -> bool,
    ) -> usize {
        let found = self
            .notes
            .iter()
            .rposition(|n| n.shape == shape && n.statement == statement && n.origin == origin);
        self.tick += 1;
        match found {
            Some(at) => {
                let note = &mut self.notes[at];
                note.seen = note.seen.saturating_add(1);
                note.used = self.tick;
                at
            }
            None => {
                let note = Note {
                    shape,
                    statement,
                    origin,
                    credential_outside: outside(),
                    defined: None,
                    seen: 1,
                    used: self.tick,
                };
                if self.notes.len() < KEPT {
                    self.notes.push(note);
                    return self.notes.len() - 1;
                }
                let lru = (0..self.notes.len())
                    .min_by_key(|&i| self.notes[i].used)
                    .unwrap_or(0);
                self.notes[lru] = note;
                lru
            }
        }
    }

    /// Whether a template may be made for the note at `at`: its shape
    /// came again (a text the policy did not recall as one of its shapes
    /// is a new shape each time, and a template made for it would serve
    /// one statement), and the session's definitions have not run out.
    pub(super) fn may_make_template(&self, at: usize) -> bool {
        !self.templates_full
            && self.templates < MAX_TEMPLATES
            && self.notes.get(at).is_some_and(|n| n.seen > 1)
    }

    /// A template was made.
    pub(super) fn made_template(&mut self) {
        self.templates += 1;
    }

    /// The session keeps no more definitions.
    pub(super) fn no_more_templates(&mut self) {
        self.templates_full = true;
    }

    /// The note at `at` (from [`ShapeNotes::note`]).
    pub(super) fn at(&mut self, at: usize) -> &mut Note {
        &mut self.notes[at]
    }
}

/// Whether a literal of `all` (byte ranges of a whole text) straddles
/// the edge of statement bytes `statement` (statements start and end at
/// tokens, so none should; the recording then scans the statement whole).
pub(super) fn straddles(all: &[Range<usize>], statement: &Range<usize>) -> bool {
    all.iter().any(|l| {
        l.start < statement.end
            && statement.start < l.end
            && (l.start < statement.start || l.end > statement.end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_found_only_by_its_shape_statement_and_origin() {
        let mut notes = ShapeNotes::default();
        fn outside(
            notes: &mut ShapeNotes,
            shape: u64,
            statement: usize,
            origin: &'static str,
        ) -> bool {
            let at = notes.note(shape, statement, origin, || false);
            notes.at(at).credential_outside
        }
        let first = notes.note(1, 0, "query", || true);
        assert!(notes.at(first).credential_outside);
        assert!(outside(&mut notes, 1, 0, "query"));
        assert!(!outside(&mut notes, 2, 0, "query"));
        assert!(!outside(&mut notes, 1, 1, "query"));
        assert!(!outside(&mut notes, 1, 0, "parse"));
        for shape in 10..10 + KEPT as u64 {
            outside(&mut notes, shape, 0, "query");
        }
        assert_eq!(notes.notes.len(), KEPT);
        // The least recently used went first.
        assert!(!outside(&mut notes, 1, 0, "query"));
        // A note in use stays among notes that come once.
        let kept = notes.note(500, 0, "query", || true);
        for shape in 1000..1000 + 3 * KEPT as u64 {
            outside(&mut notes, shape, 0, "query");
            assert_eq!(notes.note(500, 0, "query", || false), kept);
        }
        assert!(notes.at(kept).credential_outside);
    }

    #[test]
    fn a_template_is_made_only_for_a_shape_that_came_again() {
        let mut notes = ShapeNotes::default();
        let first = notes.note(7, 0, "query", || false);
        assert!(!notes.may_make_template(first), "a shape seen once");
        let again = notes.note(7, 0, "query", || false);
        assert_eq!(again, first);
        assert!(notes.may_make_template(again));
        notes.no_more_templates();
        assert!(!notes.may_make_template(again), "the definitions ran out");
    }

    /// A text of `gaps` with `literals` between them, and where the
    /// literals are when the text starts at `start` of a whole text.
    fn text(gaps: &[&str], literals: &[&str], start: usize) -> (String, Vec<Range<usize>>) {
        let mut text = String::new();
        let mut spans = Vec::new();
        for (i, gap) in gaps.iter().enumerate() {
            text.push_str(gap);
            if let Some(l) = literals.get(i) {
                spans.push(start + text.len()..start + text.len() + l.len());
                text.push_str(l);
            }
        }
        (text, spans)
    }

    #[test]
    fn a_template_fits_exactly_the_texts_it_splices_back_to() {
        use rand::seq::IndexedRandom;
        use rand::Rng;
        const GAPS: &[&str] = &[
            "",
            " ",
            "SELECT a FROM t WHERE a = ",
            ", ",
            ") AND b IN (",
            "é",
            "'",
        ];
        const LITERALS: &[&str] = &["1", "42", "'x'", "'it''s'", "'é→'", "-7", "E'\\n'", ""];
        let mut rng = rand::rng();
        for _ in 0..20_000 {
            let n = rng.random_range(0..4);
            let gaps: Vec<&str> = (0..=n).map(|_| *GAPS.choose(&mut rng).unwrap()).collect();
            let lits: Vec<&str> = (0..n)
                .map(|_| *LITERALS.choose(&mut rng).unwrap())
                .collect();
            let start = rng.random_range(0..5);
            let (first, spans) = text(&gaps, &lits, start);
            let piece = |text, spans| Piece { text, start, spans };
            let template = Template::of(&piece(&first, &spans));
            // No literal: no template; otherwise it fits its own text.
            assert_eq!(template.is_some(), n > 0);
            let Some(template) = template else { continue };
            assert!(template.fits(&piece(&first, &spans)));
            // Another text: other literals, maybe another gap.
            let mut other_gaps = gaps.clone();
            if rng.random_bool(0.3) {
                let i = rng.random_range(0..other_gaps.len());
                other_gaps[i] = GAPS.choose(&mut rng).unwrap();
            }
            let other_lits: Vec<&str> = (0..n)
                .map(|_| *LITERALS.choose(&mut rng).unwrap())
                .collect();
            let (other, other_spans) = text(&other_gaps, &other_lits, start);
            let fits = template.fits(&piece(&other, &other_spans));
            assert_eq!(fits, other_gaps == gaps, "{first:?} / {other:?}");
            if fits {
                // What the reader makes of the template and the literals.
                let (t, own) = template.parts();
                let own: Vec<[usize; 2]> = own.iter().map(|r| [r.start, r.end]).collect();
                let literals: Vec<String> = other_lits.iter().map(|l| l.to_string()).collect();
                assert_eq!(
                    crate::store::spliced(t, &own, &literals).as_deref(),
                    Some(other.as_str())
                );
            }
            // Literals that are not the statement's never fit.
            let mut shifted = other_spans.clone();
            shifted[0] = shifted[0].start + 1..shifted[0].end + 1;
            if shifted[0].end <= start + other.len()
                && other.is_char_boundary(shifted[0].start - start)
                && other.is_char_boundary(shifted[0].end - start)
                && fits
            {
                let (t, own) = template.parts();
                let own: Vec<[usize; 2]> = own.iter().map(|r| [r.start, r.end]).collect();
                let literals: Vec<String> = shifted
                    .iter()
                    .map(|r| other[r.start - start..r.end - start].to_string())
                    .collect();
                let fits_shifted = template.fits(&piece(&other, &shifted));
                let spliced = crate::store::spliced(t, &own, &literals);
                assert!(!fits_shifted || spliced.as_deref() == Some(other.as_str()));
            }
            assert!(!template.fits(&piece(&other, &other_spans[..n - 1])));
        }
    }

    #[test]
    fn within_finds_a_statements_own_literals() {
        let all = [2..4, 10..12, 20..25];
        assert_eq!(within(&all, &(0..9)), &all[..1]);
        assert_eq!(within(&all, &(9..30)), &[10..12, 20..25]);
        assert!(within(&all, &(5..9)).is_empty());
    }

    #[test]
    fn a_literal_across_a_statements_edge_is_found() {
        let all = [2..4, 10..12, 20..25];
        assert!(!straddles(&all, &(8..20)));
        assert!(!straddles(&all, &(0..30)));
        assert!(straddles(&all, &(11..30)));
        assert!(straddles(&all, &(4..11)));
        assert!(!straddles(&all, &(4..10)));
    }
}
