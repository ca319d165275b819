//! A statement's fixed fields — where it came from, its fingerprint,
//! verdict, tags, deciding rule and masking — recorded once per session as
//! a numbered definition, and referenced by number from each statement
//! that shares them. A client that sends the same statement shape with
//! new literals (every simple-protocol client) then records its text and
//! a number per statement, not the same fields again: fewer bytes to
//! encode, hash and store per read.
//!
//! This module must never let a statement reference a definition that is
//! not in the session's records before it: a definition whose record could
//! not be queued is forgotten, and its statement is recorded whole.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::store::{Definition, Reference, StatementEvent};

/// Definitions a session keeps, at most, and their fingerprints' bytes
/// (past either, new statement shapes are recorded whole; memory per
/// session stays bounded). A fingerprint longer than
/// [`MAX_DEFINED_FINGERPRINT`] is never defined: long texts rarely repeat.
const MAX_DEFINITIONS: usize = 512;
const MAX_DEFINED_BYTES: usize = 256 << 10;
const MAX_DEFINED_FINGERPRINT: usize = 4 << 10;

/// One session's definitions, found by origin and fingerprint.
#[derive(Debug, Default)]
pub struct Definitions {
    by_shape: HashMap<u64, Vec<Definition>, foldhash::fast::RandomState>,
    count: usize,
    bytes: usize,
    /// Seeded per session: fingerprints are the client's to shape.
    hasher: foldhash::fast::RandomState,
}

impl Definitions {
    fn shape(&self, origin: &str, fingerprint: &str) -> u64 {
        self.hasher.hash_one((origin, fingerprint))
    }

    /// The number of the definition of this origin and fingerprint whose
    /// other fields `same` accepts.
    pub fn find(
        &self,
        origin: &str,
        fingerprint: &str,
        same: impl Fn(&Definition) -> bool,
    ) -> Option<u32> {
        self.by_shape
            .get(&self.shape(origin, fingerprint))?
            .iter()
            .find(|d| d.origin == origin && d.fingerprint == fingerprint && same(d))
            .map(|d| d.d)
    }

    /// Numbers a new definition (`d` is set here); `None` when the
    /// session keeps no more.
    pub fn add(&mut self, mut def: Definition) -> Option<Definition> {
        let bytes = def.size();
        if self.count >= MAX_DEFINITIONS
            || def.fingerprint.len() > MAX_DEFINED_FINGERPRINT
            || def
                .text
                .as_ref()
                .is_some_and(|t| t.len() > MAX_DEFINED_FINGERPRINT)
            || self.bytes + bytes > MAX_DEFINED_BYTES
        {
            return None;
        }
        self.bytes += bytes;
        def.d = self.count as u32;
        self.count += 1;
        let shape = self.shape(&def.origin, &def.fingerprint);
        self.by_shape.entry(shape).or_default().push(def.clone());
        Some(def)
    }

    /// The records of `event`: its definition's body when the definition
    /// is new (number and JSON), and the statement's body referencing it —
    /// whole when it is refused or the session keeps no more definitions.
    /// `fixed_text`: every statement of its shape runs this very text
    /// (an execution of a prepared statement): the definition keeps it,
    /// the references leave it out.
    pub fn encode(
        &mut self,
        event: &StatementEvent,
        fixed_text: bool,
    ) -> (Option<(u32, String)>, String) {
        let whole = || serde_json::to_string(event).unwrap_or_default();
        // A text too long to define is carried by each reference.
        let fixed_text = fixed_text && may_hold(&event.text);
        if event.refusal.is_some() {
            return (None, whole());
        }
        let same = |d: &Definition| {
            d.verdict == event.verdict
                && d.tags == event.tags
                && d.masked == event.masked
                && d.rule == event.rule
                && d.masked_columns == event.masked_columns
                && d.text.as_deref() == fixed_text.then_some(event.text.as_str())
                && d.template.is_none()
        };
        let (new, d) = match self.find(&event.origin, &event.fingerprint, same) {
            Some(d) => (None, d),
            None => {
                let Some(def) = self.add(Definition {
                    d: 0,
                    origin: event.origin.clone(),
                    fingerprint: event.fingerprint.clone(),
                    verdict: event.verdict.clone(),
                    tags: event.tags.clone(),
                    masked: event.masked,
                    rule: event.rule.clone(),
                    masked_columns: event.masked_columns.clone(),
                    text: fixed_text.then(|| event.text.clone()),
                    template: None,
                    literals: Vec::new(),
                }) else {
                    return (None, whole());
                };
                let body = serde_json::to_string(&def).unwrap_or_default();
                (Some((def.d, body)), def.d)
            }
        };
        let reference = Reference {
            d,
            text: (!fixed_text).then_some(event.text.as_str()),
            literals: None,
            parameters: event
                .parameters
                .as_deref()
                .map(sqlgate_net::parameters::Parameters::Values),
        };
        (new, serde_json::to_string(&reference).unwrap_or_default())
    }

    /// Forgets definition `d` (its record could not be queued).
    pub fn forget(&mut self, d: u32) {
        for defs in self.by_shape.values_mut() {
            if let Some(i) = defs.iter().position(|x| x.d == d) {
                let gone = defs.swap_remove(i);
                self.bytes -= gone.size();
            }
        }
    }
}

/// Whether a definition may hold `text` (see
/// [`Definitions::encode`]'s `fixed_text`).
pub fn may_hold(text: &str) -> bool {
    text.len() <= MAX_DEFINED_FINGERPRINT
}

/// What a definition's strings take, as [`MAX_DEFINED_BYTES`] counts.
trait Size {
    fn size(&self) -> usize;
}

impl Size for Definition {
    fn size(&self) -> usize {
        self.fingerprint.len()
            + self.origin.len()
            + self.text.as_ref().map_or(0, String::len)
            + self.template.as_ref().map_or(0, String::len)
            + self.literals.len() * std::mem::size_of::<[usize; 2]>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(origin: &str, fingerprint: &str, verdict: &str) -> Definition {
        Definition {
            d: 0,
            origin: origin.into(),
            fingerprint: fingerprint.into(),
            verdict: verdict.into(),
            tags: vec!["read".into()],
            masked: false,
            rule: None,
            masked_columns: Vec::new(),
            text: None,
            template: None,
            literals: Vec::new(),
        }
    }

    fn event(text: &str, verdict: &str) -> StatementEvent {
        StatementEvent {
            origin: "query".into(),
            text: text.into(),
            fingerprint: "SELECT ? FROM t".into(),
            verdict: verdict.into(),
            tags: vec!["read".into()],
            refusal: None,
            masked: false,
            parameters: None,
            rule: Some("bench (read)".into()),
            masked_columns: Vec::new(),
        }
    }

    /// Encodes `sent` as a session would record it: each statement's
    /// body, and the events a reader gets back from those records.
    fn record_and_read(
        defs: &mut Definitions,
        sent: &[StatementEvent],
        fixed_text: bool,
    ) -> (Vec<String>, Vec<StatementEvent>) {
        use crate::store::{events, Kind, Row};
        let mut lines = String::new();
        let mut bodies = Vec::new();
        for e in sent {
            let (new, body) = defs.encode(e, fixed_text);
            if let Some((_, def)) = new {
                lines.push_str(&format!("definition\t1\t{def}\n"));
            }
            lines.push_str(&format!("statement\t1\t{body}\n"));
            bodies.push(body);
        }
        let row = Row {
            session: "s".into(),
            seq: 1,
            kind: Kind::Events,
            at_us: 1,
            body: lines,
            prev: [0; 32],
            hash: [0; 32],
        };
        let read = events(&[row])
            .iter()
            .map(|e| {
                assert_eq!(e.kind, Kind::Statement);
                serde_json::from_str(&e.body).unwrap()
            })
            .collect();
        (bodies, read)
    }

    #[test]
    fn statements_of_one_shape_reference_one_definition_and_read_back_whole() {
        use crate::store::{events, Kind, Row};
        let mut defs = Definitions::default();
        let sent = [
            event("SELECT 1 FROM t", "allow"),
            event("SELECT 2 FROM t", "allow"),
            // A policy reload changed the verdict: a new definition.
            event("SELECT 3 FROM t", "deny"),
        ];
        let (bodies, read) = record_and_read(&mut defs, &sent, false);
        // The second is its text and a number, nothing else.
        assert_eq!(bodies[1], r#"{"d":0,"text":"SELECT 2 FROM t"}"#);
        assert!(bodies[2].starts_with(r#"{"d":1,"#), "{}", bodies[2]);
        assert_eq!(read, sent);
        // A reference whose definition is not there says so.
        let dangling = Row {
            session: "s".into(),
            seq: 2,
            kind: Kind::Events,
            at_us: 1,
            body: "statement\t1\t{\"d\":7,\"text\":\"SELECT 9 FROM t\"}\n".into(),
            prev: [0; 32],
            hash: [0; 32],
        };
        let read: StatementEvent = serde_json::from_str(&events(&[dangling])[0].body).unwrap();
        assert_eq!(read.text, "SELECT 9 FROM t");
        assert_eq!(read.verdict, crate::store::MISSING_DEFINITION);
    }

    #[test]
    fn a_template_statement_reads_back_spliced_and_says_when_its_template_is_missing() {
        use crate::store::{events, Kind, Row};
        let template = Definition {
            template: Some("SELECT a FROM t WHERE a = 1 AND b = 'x'".into()),
            literals: vec![[26, 27], [36, 39]],
            ..def("query", "SELECT a FROM t WHERE a = ? AND b = '?'", "allow")
        };
        let row = |body: String| Row {
            session: "s".into(),
            seq: 0,
            kind: Kind::Events,
            at_us: 1,
            body,
            prev: [0; 32],
            hash: [0; 32],
        };
        let lines = format!(
            "definition\t1\t{}\nstatement\t+5\t{}\nstatement\t+5\t{}\nstatement\t+5\t{}\n",
            serde_json::to_string(&template).unwrap(),
            r#"{"d":0,"literals":["12345","'it''s é'"]}"#,
            r#"{"d":0,"literals":["1"]}"#,
            r#"{"d":3,"literals":["1","'y'"]}"#,
        );
        let read: Vec<StatementEvent> = events(&[row(lines)])
            .iter()
            .map(|e| serde_json::from_str(&e.body).unwrap())
            .collect();
        assert_eq!(
            read[0].text,
            "SELECT a FROM t WHERE a = 12345 AND b = 'it''s é'"
        );
        assert_eq!(read[0].verdict, "allow");
        assert_eq!(
            read[0].fingerprint,
            "SELECT a FROM t WHERE a = ? AND b = '?'"
        );
        // Too few literals, or no template: not a text it never was.
        for r in &read[1..] {
            assert_eq!(r.verdict, crate::store::MISSING_DEFINITION);
            assert!(r.text.starts_with(crate::store::MISSING_TEXT), "{}", r.text);
        }
    }

    #[test]
    fn executions_reference_a_definition_that_holds_their_text() {
        let mut defs = Definitions::default();
        let execution = |text: &str, parameter: &str| StatementEvent {
            origin: "execute".into(),
            parameters: Some(vec![Some(parameter.into())]),
            ..event(text, "allow")
        };
        // Two prepared texts of one fingerprint: two definitions.
        let sent = [
            execution("SELECT 1 FROM t WHERE a = $1", "x"),
            execution("SELECT 1 FROM t WHERE a = $1", "y"),
            execution("SELECT 2 FROM t WHERE a = $1", "z"),
        ];
        let (bodies, read) = record_and_read(&mut defs, &sent, true);
        // The second is a number and its parameters: no text.
        assert_eq!(bodies[1], r#"{"d":0,"parameters":["y"]}"#);
        assert!(bodies[2].starts_with(r#"{"d":1,"#), "{}", bodies[2]);
        assert_eq!(read, sent);
    }

    #[test]
    fn long_fingerprints_are_not_defined() {
        let mut defs = Definitions::default();
        let mut e = event("SELECT 1 FROM t", "allow");
        e.fingerprint = "x".repeat(MAX_DEFINED_FINGERPRINT + 1);
        let (new, body) = defs.encode(&e, false);
        assert!(new.is_none());
        assert_eq!(serde_json::from_str::<StatementEvent>(&body).unwrap(), e);
    }

    #[test]
    fn found_by_every_field_and_bounded() {
        let mut defs = Definitions::default();
        let a = defs.add(def("query", "SELECT ?", "allow")).unwrap();
        let b = defs.add(def("query", "SELECT ?", "deny")).unwrap();
        assert_ne!(a.d, b.d);
        assert_eq!(
            defs.find("query", "SELECT ?", |d| d.verdict == "deny"),
            Some(b.d)
        );
        assert_eq!(defs.find("parse", "SELECT ?", |_| true), None);
        defs.forget(b.d);
        assert_eq!(
            defs.find("query", "SELECT ?", |d| d.verdict == "deny"),
            None
        );
        while defs.add(def("query", "x", "allow")).is_some() {}
        assert_eq!(defs.count, MAX_DEFINITIONS);
    }
}
