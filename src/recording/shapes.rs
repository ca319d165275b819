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

/// Notes a session keeps (the newest; a shape has one per statement).
const KEPT: usize = 32;

/// One statement of one shape.
#[derive(Debug)]
pub(super) struct Note {
    shape: u64,
    statement: usize,
    origin: Box<str>,
    /// A credential word is among the statement's words that touch none
    /// of its literals.
    pub credential_outside: bool,
    /// The session's definition its statements referenced last.
    pub defined: Option<Defined>,
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
}

/// A session's notes, the newest last.
#[derive(Debug, Default)]
pub(super) struct ShapeNotes {
    notes: Vec<Note>,
}

impl ShapeNotes {
    /// Where the note of statement `statement` of shape `shape` sent as
    /// `origin` is; made with `outside` (the statement's credential words
    /// away from its literals) when there is none.
    pub(super) fn note(
        &mut self,
        shape: u64,
        statement: usize,
        origin: &str,
        outside: impl FnOnce() -> bool,
    ) -> usize {
        let found = self
            .notes
            .iter()
            .rposition(|n| n.shape == shape && n.statement == statement && *n.origin == *origin);
        match found {
            Some(at) => at,
            None => {
                if self.notes.len() == KEPT {
                    self.notes.remove(0);
                }
                self.notes.push(Note {
                    shape,
                    statement,
                    origin: origin.into(),
                    credential_outside: outside(),
                    defined: None,
                });
                self.notes.len() - 1
            }
        }
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
        fn outside(notes: &mut ShapeNotes, shape: u64, statement: usize, origin: &str) -> bool {
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
        // The oldest went first.
        assert!(!outside(&mut notes, 1, 0, "query"));
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
