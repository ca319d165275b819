//! The first rows of each result as the client received them, kept within
//! a sink's limits for the recording. Values are written straight into
//! one text buffer the sampler keeps from result to result, so a sampled
//! result costs no allocation per row or value once the buffers have
//! grown (every read a recording session runs is sampled).
//!
//! A sample holds values exactly as they left for the client — after
//! masking — and this module must never be handed a row before its
//! masks were applied.

use std::sync::Arc;

/// How much of each result a sink keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleLimits {
    /// Rows per result (0: none).
    pub rows: usize,
    /// Bytes of values per result.
    pub bytes: usize,
}

/// The first rows of a result as the client received them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResultSample {
    /// Column names (shared with the description they came from).
    pub columns: Arc<Vec<String>>,
    /// Every value's text, one after the other.
    text: String,
    /// Each value's place in `text` (`None`: NULL), row after row.
    cells: Vec<Option<(usize, usize)>>,
    /// Where each row's cells end.
    row_ends: Vec<usize>,
    /// More rows followed than the sample kept.
    pub truncated: bool,
}

impl ResultSample {
    /// A sample of these columns and rows (values `None`: NULL).
    pub fn new<'v>(
        columns: Vec<String>,
        rows: impl IntoIterator<Item = impl IntoIterator<Item = Option<&'v str>>>,
        truncated: bool,
    ) -> ResultSample {
        let mut s = ResultSample {
            columns: Arc::new(columns),
            truncated,
            ..ResultSample::default()
        };
        for row in rows {
            let mut values = RowValues { sample: &mut s };
            for v in row {
                match v {
                    Some(v) => values.text(v),
                    None => values.null(),
                }
            }
            s.row_ends.push(s.cells.len());
        }
        s
    }

    /// How many rows it kept.
    pub fn row_count(&self) -> usize {
        self.row_ends.len()
    }

    /// Its rows, each its values in column order (`None`: NULL).
    pub fn rows(&self) -> impl ExactSizeIterator<Item = SampleRow<'_>> {
        (0..self.row_ends.len()).map(|i| {
            let from = if i == 0 { 0 } else { self.row_ends[i - 1] };
            SampleRow {
                text: &self.text,
                cells: &self.cells[from..self.row_ends[i]],
            }
        })
    }

    fn clear(&mut self) {
        self.text.clear();
        self.cells.clear();
        self.row_ends.clear();
        self.truncated = false;
    }
}

/// One row of a [`ResultSample`].
#[derive(Debug, Clone, Copy)]
pub struct SampleRow<'s> {
    text: &'s str,
    cells: &'s [Option<(usize, usize)>],
}

impl<'s> SampleRow<'s> {
    /// Its values in column order (`None`: NULL).
    pub fn values(&self) -> impl ExactSizeIterator<Item = Option<&'s str>> + 's {
        let text = self.text;
        self.cells
            .iter()
            .map(move |c| c.map(|(from, to)| &text[from..to]))
    }
}

/// Where a relay writes the values of the row it hands a [`Sampler`].
#[derive(Debug)]
pub struct RowValues<'s> {
    sample: &'s mut ResultSample,
}

impl RowValues<'_> {
    /// A NULL.
    pub fn null(&mut self) {
        self.sample.cells.push(None);
    }

    /// A value as it is.
    pub fn text(&mut self, value: &str) {
        let from = self.sample.text.len();
        self.sample.text.push_str(value);
        self.sample.cells.push(Some((from, self.sample.text.len())));
    }

    /// A value's bytes as a sample shows them (see [`shown`]).
    pub fn shown(&mut self, value: &[u8]) {
        let from = self.sample.text.len();
        shown_into(&mut self.sample.text, value);
        self.sample.cells.push(Some((from, self.sample.text.len())));
    }

    /// The values written so far for this row.
    pub fn len(&self) -> usize {
        self.sample.cells.len() - self.sample.row_ends.last().copied().unwrap_or(0)
    }

    /// Whether no value was written yet for this row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Builds one result's sample as its rows pass (one per relay).
#[derive(Debug, Default)]
pub struct Sampler {
    limits: SampleLimits,
    current: ResultSample,
    /// A result has begun and not finished.
    active: bool,
    bytes: usize,
}

impl Sampler {
    /// A sampler within `limits` (`None`: the sink keeps no samples).
    pub fn new(limits: SampleLimits) -> Option<Sampler> {
        (limits.rows > 0 && limits.bytes > 0).then(|| Sampler {
            limits,
            ..Sampler::default()
        })
    }

    /// A result with these columns starts.
    pub fn begin(&mut self, columns: Arc<Vec<String>>) {
        self.current.clear();
        self.current.columns = columns;
        self.active = true;
        self.bytes = 0;
    }

    /// A result whose columns have these names starts, as with
    /// [`Sampler::begin`] (names shown as UTF-8, lossily). One begun with
    /// the same names and no rows yet is kept as it is, without a copy
    /// (a portal described just before it runs).
    pub fn begin_named<'n>(&mut self, names: impl ExactSizeIterator<Item = &'n [u8]> + Clone) {
        let s = &self.current;
        let same = self.active
            && s.row_ends.is_empty()
            && !s.truncated
            && s.columns.len() == names.len()
            && s.columns
                .iter()
                .zip(names.clone())
                .all(|(c, n)| c.as_bytes() == n);
        if same {
            self.bytes = 0;
        } else {
            let names = names
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect();
            self.begin(Arc::new(names));
        }
    }

    /// Whether a result has begun (and not finished).
    pub fn begun(&self) -> bool {
        self.active
    }

    /// One more column of the result that began.
    pub fn begin_column(&mut self, name: String) {
        if self.active {
            Arc::make_mut(&mut self.current.columns).push(name);
        }
    }

    /// Whether a row of `len` bytes would be kept (the relay then hands
    /// it over whole, after masking).
    pub fn wants(&self, len: usize) -> bool {
        if !self.active {
            return self.limits.bytes >= len;
        }
        let s = &self.current;
        !s.truncated && s.row_ends.len() < self.limits.rows && self.bytes + len <= self.limits.bytes
    }

    /// A row the client received, its values (after masking) written by
    /// `values`; `len` as asked of [`Sampler::wants`]. A row `values`
    /// cannot decode (it returns `None`) is taken back and counts as
    /// skipped. A row before any [`Sampler::begin`] begins a result whose
    /// columns are `named` if it has as many values, else `?column1?`,
    /// `?column2?`, ...
    pub fn row(
        &mut self,
        len: usize,
        named: Option<&Arc<Vec<String>>>,
        values: impl FnOnce(&mut RowValues<'_>) -> Option<()>,
    ) {
        let fresh = !self.active;
        if fresh {
            self.begin(Arc::default());
        }
        let s = &mut self.current;
        let (text, cells) = (s.text.len(), s.cells.len());
        if values(&mut RowValues { sample: s }).is_none() {
            s.text.truncate(text);
            s.cells.truncate(cells);
            s.truncated = true;
            return;
        }
        if fresh {
            let n = s.cells.len() - cells;
            s.columns = match named {
                Some(c) if c.len() == n => c.clone(),
                _ => Arc::new((1..=n).map(|i| format!("?column{i}?")).collect()),
            };
        }
        s.row_ends.push(s.cells.len());
        self.bytes += len;
    }

    /// A row passed without being kept.
    pub fn skipped(&mut self) {
        if !self.active {
            self.begin(Arc::default());
        }
        self.current.truncated = true;
    }

    /// The result ended: its sample, if it had columns or rows, to keep.
    pub fn finish(&mut self) -> Option<ResultSample> {
        self.finished().cloned()
    }

    /// The result ended: its sample, if it had columns or rows, to read
    /// now (its buffers serve the next result).
    pub fn finished(&mut self) -> Option<&ResultSample> {
        self.bytes = 0;
        std::mem::take(&mut self.active).then_some(&self.current)
    }
}

/// A value as a sample shows it: text as it is, anything else as `\x`
/// and hex.
pub fn shown(value: &[u8]) -> String {
    let mut out = String::new();
    shown_into(&mut out, value);
    out
}

/// `bytes` as text, lossily where they are not UTF-8: `from_utf8` checks
/// ASCII a word at a time, where `String::from_utf8_lossy` walks its
/// chunks even through valid text (statements, tags and values on every
/// path).
pub fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Some(text) = ascii(bytes) {
        return std::borrow::Cow::Borrowed(text);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `bytes` as text when every byte is ASCII (`None` otherwise). Why:
/// `from_utf8` costs some ninety instructions on the short values, tags
/// and parameters every read carries, where one look at each word finds
/// them ASCII.
fn ascii(bytes: &[u8]) -> Option<&str> {
    if !bytes.is_ascii() {
        return None;
    }
    // SAFETY: every byte is below 0x80 (checked just above), and a
    // sequence of such bytes is valid UTF-8: each is a one-byte
    // character, so no byte sequence can be malformed.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// [`shown`], appended to `out`.
pub fn shown_into(out: &mut String, value: &[u8]) {
    // Printable ASCII (most values) is text without a look at each of
    // its characters (samples of wide results are many values).
    let plain = |v: &[u8]| {
        v.iter()
            .all(|&b| matches!(b, 0x20..=0x7e | b'\n' | b'\t' | b'\r'))
    };
    // (Printable ASCII is ASCII: `ascii` always takes it.)
    if let Some(s) = ascii(value).filter(|_| plain(value)) {
        out.push_str(s);
        return;
    }
    match std::str::from_utf8(value) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') =>
        {
            out.push_str(s)
        }
        _ => {
            out.reserve(2 + 2 * value.len());
            out.push_str("\\x");
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in value {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(s: &ResultSample) -> Vec<Vec<Option<String>>> {
        s.rows()
            .map(|r| r.values().map(|v| v.map(str::to_owned)).collect())
            .collect()
    }

    fn texts<'a>(
        values: &'a [Option<&'a str>],
    ) -> impl FnOnce(&mut RowValues<'_>) -> Option<()> + 'a {
        move |r| {
            for v in values {
                match v {
                    Some(v) => r.text(v),
                    None => r.null(),
                }
            }
            Some(())
        }
    }

    #[test]
    fn a_sample_keeps_the_first_rows_within_its_limits() {
        let mut s = Sampler::new(SampleLimits { rows: 2, bytes: 10 }).unwrap();
        s.begin(Arc::new(vec!["a".into()]));
        assert!(s.wants(4));
        s.row(4, None, texts(&[Some("abcd")]));
        assert!(!s.wants(7), "past the byte limit");
        assert!(s.wants(6));
        s.row(6, None, texts(&[None]));
        assert!(!s.wants(0), "past the row limit");
        s.skipped();
        let got = s.finish().unwrap();
        assert_eq!(rows(&got), [vec![Some("abcd".to_owned())], vec![None]]);
        assert!(got.truncated);
        assert!(s.finish().is_none());
        assert!(Sampler::new(SampleLimits { rows: 0, bytes: 10 }).is_none());
    }

    #[test]
    fn a_result_reuses_the_last_ones_buffers_and_keeps_none_of_its_values() {
        let limits = SampleLimits {
            rows: 5,
            bytes: 100,
        };
        let mut s = Sampler::new(limits).unwrap();
        s.begin(Arc::new(vec!["a".into(), "b".into()]));
        s.row(3, None, texts(&[Some("one"), Some("two")]));
        s.skipped();
        assert_eq!(s.finished().map(ResultSample::row_count), Some(1));
        s.begin(Arc::new(vec!["c".into()]));
        s.row(1, None, texts(&[Some("x")]));
        let got = s.finished().unwrap();
        assert_eq!(
            got,
            &ResultSample::new(vec!["c".into()], [[Some("x")]], false)
        );
        assert!(s.finished().is_none(), "finished once");
    }

    #[test]
    fn a_row_that_does_not_decode_is_taken_back_and_marks_the_sample_cut() {
        let mut s = Sampler::new(SampleLimits {
            rows: 5,
            bytes: 100,
        })
        .unwrap();
        s.row(2, None, texts(&[Some("ok"), None]));
        s.row(9, None, |r| {
            r.text("half");
            None
        });
        let got = s.finish().unwrap();
        assert_eq!(*got.columns, ["?column1?", "?column2?"]);
        assert_eq!(rows(&got), [vec![Some("ok".to_owned()), None]]);
        assert!(got.truncated);
    }

    #[test]
    fn a_row_before_any_description_takes_names_only_if_it_decodes_with_as_many() {
        let limits = SampleLimits {
            rows: 5,
            bytes: 100,
        };
        let named = Arc::new(vec!["a".to_owned(), "b".to_owned()]);
        let first = |values: &[Option<&str>]| {
            let mut s = Sampler::new(limits).unwrap();
            s.row(1, Some(&named), texts(values));
            s.finish().unwrap()
        };
        assert_eq!(*first(&[Some("1"), None]).columns, ["a", "b"]);
        assert_eq!(*first(&[Some("1")]).columns, ["?column1?"]);
        // One that does not decode names nothing: the result is cut.
        let mut s = Sampler::new(limits).unwrap();
        s.row(1, Some(&named), |_| None);
        let got = s.finish().unwrap();
        assert!(got.columns.is_empty() && got.truncated && got.row_count() == 0);
        // A result begun with no columns keeps none.
        let mut s = Sampler::new(limits).unwrap();
        s.begin(Arc::default());
        s.row(1, Some(&named), texts(&[Some("1"), None]));
        assert!(s.finish().unwrap().columns.is_empty());
    }

    #[test]
    fn a_result_begun_by_name_is_the_one_begin_would_start() {
        let limits = SampleLimits {
            rows: 5,
            bytes: 100,
        };
        let names: [&[u8]; 2] = [b"a", b"b\xff"];
        let begin_named = |s: &mut Sampler| s.begin_named(names.iter().copied());
        let mut by_name = Sampler::new(limits).unwrap();
        let mut by_begin = Sampler::new(limits).unwrap();
        // From nothing, from other names, from the same names with a
        // row already kept: each starts afresh, as `begin` does.
        for before in [
            None,
            Some(vec!["x".to_owned()]),
            Some(vec!["a".to_owned(), "b\u{fffd}".to_owned()]),
        ] {
            for s in [&mut by_name, &mut by_begin] {
                if let Some(b) = &before {
                    s.begin(Arc::new(b.clone()));
                    s.row(3, None, texts(&[Some("v"), None]));
                }
            }
            begin_named(&mut by_name);
            by_begin.begin(Arc::new(vec!["a".into(), "b\u{fffd}".into()]));
            assert_eq!(by_name.current, by_begin.current);
            assert_eq!(by_name.active, by_begin.active);
            assert_eq!(by_name.bytes, by_begin.bytes);
        }
        // The same names begun again keep the result (no rows yet).
        begin_named(&mut by_name);
        by_name.row(3, None, texts(&[Some("v"), None]));
        let got = by_name.finish().unwrap();
        assert_eq!(*got.columns, ["a", "b\u{fffd}"]);
        assert_eq!(got.row_count(), 1);
    }

    #[test]
    fn values_that_are_not_text_show_as_hex() {
        assert_eq!(shown(b"hello"), "hello");
        assert_eq!(shown(b"a\tb\r\nc ~"), "a\tb\r\nc ~");
        assert_eq!(shown(b"a\x7f"), "\\x617f");
        assert_eq!(shown(b"a\x1b"), "\\x611b");
        assert_eq!(shown("é→".as_bytes()), "é→");
        assert_eq!(shown("a\u{85}".as_bytes()), "\\x61c285");
        assert_eq!(shown(&[0, 0, 0, 1]), "\\x00000001");
        assert_eq!(shown(&[0xff]), "\\xff");
    }

    #[test]
    fn lossy_text_is_what_the_standard_library_makes_of_any_bytes() {
        // Pieces that make ASCII, valid multi-byte characters, cut ones
        // and bytes that are never UTF-8, mixed at every length.
        let pieces: [&[u8]; 8] = [
            b"a",
            b"7 ",
            b"\x00",
            b"\x7f",
            "é".as_bytes(),
            "→".as_bytes(),
            &[0xe2, 0x86],
            &[0xff],
        ];
        let mut seed: u64 = 0x5eed;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 59) as usize;
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Mostly ASCII, as values are.
                let at = ((seed >> 60) as usize).saturating_sub(8) % pieces.len();
                bytes.extend_from_slice(pieces[if seed >> 63 == 0 { 0 } else { at }]);
            }
            assert_eq!(lossy(&bytes), String::from_utf8_lossy(&bytes), "{bytes:?}");
            let mut out = String::new();
            shown_into(&mut out, &bytes);
            let expected = match std::str::from_utf8(&bytes) {
                Ok(s)
                    if !s
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) =>
                {
                    s.to_owned()
                }
                _ => format!(
                    "\\x{}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ),
            };
            assert_eq!(out, expected, "{bytes:?}");
        }
    }
}
