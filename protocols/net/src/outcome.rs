//! What a statement came to, as a relay sees it in the server's answers:
//! done (its command tag, the rows it returned or affected, and the first
//! rows of its result as the client received them) or failed (the error's
//! code and message as the client saw them). Relays report outcomes in the
//! order the server answers; recording and metrics consume them.
//!
//! A sample holds values exactly as they left for the client — after
//! masking — and this module must never be handed a row before its
//! masks were applied.

/// One statement's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It completed.
    Done {
        /// The server's command tag (PostgreSQL `INSERT 0 1`, `SELECT 5`;
        /// MySQL `OK` or `ROWS`).
        tag: String,
        /// Rows returned (a result set) or affected.
        rows: u64,
        /// Bytes of the answer sent to the client.
        bytes: u64,
        /// The first rows of its result as the client saw them, when the
        /// sink asked for samples and it returned a result.
        sample: Option<ResultSample>,
    },
    /// The server failed it.
    Failed {
        /// PostgreSQL SQLSTATE, MySQL error number.
        code: String,
        /// The message the client received (scrubbed where masking hides
        /// values).
        message: String,
        /// Bytes of the answer sent to the client.
        bytes: u64,
    },
}

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
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, each a value per column (`None`: NULL). Values that are not
    /// text (binary formats) are shown as `\x` and hex.
    pub rows: Vec<Vec<Option<String>>>,
    /// More rows followed than the sample kept.
    pub truncated: bool,
}

/// Builds one result's sample as its rows pass (one per relay).
#[derive(Debug, Default)]
pub struct Sampler {
    limits: SampleLimits,
    current: Option<ResultSample>,
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
    pub fn begin(&mut self, columns: Vec<String>) {
        self.current = Some(ResultSample {
            columns,
            ..ResultSample::default()
        });
        self.bytes = 0;
    }

    /// A result whose columns have these names starts, as with
    /// [`Sampler::begin`] (names shown as UTF-8, lossily). One begun with
    /// the same names and no rows yet is kept as it is, without a copy
    /// (a portal described just before it runs).
    pub fn begin_named<'n>(&mut self, names: impl ExactSizeIterator<Item = &'n [u8]> + Clone) {
        let same = self.current.as_ref().is_some_and(|s| {
            s.rows.is_empty()
                && !s.truncated
                && s.columns.len() == names.len()
                && s.columns
                    .iter()
                    .zip(names.clone())
                    .all(|(c, n)| c.as_bytes() == n)
        });
        if same {
            self.bytes = 0;
        } else {
            self.begin(
                names
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect(),
            );
        }
    }

    /// Whether a result has begun (and not finished).
    pub fn begun(&self) -> bool {
        self.current.is_some()
    }

    /// One more column of the result that began.
    pub fn begin_column(&mut self, name: String) {
        if let Some(s) = &mut self.current {
            s.columns.push(name);
        }
    }

    /// Whether a row of `len` bytes would be kept (the relay then hands
    /// it over whole, after masking).
    pub fn wants(&self, len: usize) -> bool {
        let Some(s) = &self.current else {
            return self.limits.bytes >= len;
        };
        !s.truncated && s.rows.len() < self.limits.rows && self.bytes + len <= self.limits.bytes
    }

    /// A row the client received (values after masking); `len` as asked
    /// of [`Sampler::wants`].
    pub fn row(&mut self, len: usize, values: Vec<Option<String>>) {
        let current = self.current.get_or_insert_with(|| ResultSample {
            columns: (1..=values.len()).map(|i| format!("?column{i}?")).collect(),
            ..ResultSample::default()
        });
        current.rows.push(values);
        self.bytes += len;
    }

    /// A row passed without being kept.
    pub fn skipped(&mut self) {
        if let Some(s) = &mut self.current {
            s.truncated = true;
        } else {
            self.current = Some(ResultSample {
                truncated: true,
                ..ResultSample::default()
            });
        }
    }

    /// The result ended: its sample, if it had columns or rows.
    pub fn finish(&mut self) -> Option<ResultSample> {
        self.bytes = 0;
        self.current.take()
    }
}

/// A value as a sample shows it: text as it is, anything else as `\x`
/// and hex.
pub fn shown(value: &[u8]) -> String {
    // Printable ASCII (most values) is text without a look at each of
    // its characters (samples of wide results are many values).
    let plain = |v: &[u8]| {
        v.iter()
            .all(|&b| matches!(b, 0x20..=0x7e | b'\n' | b'\t' | b'\r'))
    };
    match std::str::from_utf8(value) {
        Ok(s)
            if plain(value)
                || !s
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') =>
        {
            s.to_owned()
        }
        _ => {
            let mut out = String::with_capacity(2 + 2 * value.len());
            out.push_str("\\x");
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in value {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            out
        }
    }
}

/// Where a relay reports how long each request took the server: from its
/// last message forwarded (a Query, a Sync, a MySQL command) to the end of
/// its answer (ReadyForQuery, the command's last packet).
pub type Timings = std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// Where a session's outcomes go.
pub trait OutcomeSink: Send + Sync + std::fmt::Debug {
    /// One outcome, in the order the server answered.
    fn outcome(&self, outcome: Outcome);

    /// How much of each result to sample (none unless a sink asks).
    fn sample_limits(&self) -> SampleLimits {
        SampleLimits::default()
    }

    /// The session's traffic when its relay ends: bytes from the client
    /// and to it.
    fn traffic(&self, _from_client: u64, _to_client: u64) {}

    /// The server answered the oldest statement preparation the relay
    /// forwarded and had not seen answered (PostgreSQL: ParseComplete,
    /// `ok`; an error or a skip to Sync, not), under the name `name`.
    fn statement_prepared(&self, _name: &[u8], _ok: bool) {}

    /// The server dropped the unnamed statement (a refused Parse's marker
    /// failed in its place).
    fn unnamed_statement_dropped(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_keeps_the_first_rows_within_its_limits() {
        let mut s = Sampler::new(SampleLimits { rows: 2, bytes: 10 }).unwrap();
        s.begin(vec!["a".into()]);
        assert!(s.wants(4));
        s.row(4, vec![Some("abcd".into())]);
        assert!(!s.wants(7), "past the byte limit");
        assert!(s.wants(6));
        s.row(6, vec![None]);
        assert!(!s.wants(0), "past the row limit");
        s.skipped();
        let got = s.finish().unwrap();
        assert_eq!(got.rows.len(), 2);
        assert!(got.truncated);
        assert!(s.finish().is_none());
        assert!(Sampler::new(SampleLimits { rows: 0, bytes: 10 }).is_none());
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
                    s.begin(b.clone());
                    s.row(3, vec![Some("v".into()), None]);
                }
            }
            begin_named(&mut by_name);
            by_begin.begin(vec!["a".into(), "b\u{fffd}".into()]);
            assert_eq!(by_name.current, by_begin.current);
            assert_eq!(by_name.bytes, by_begin.bytes);
        }
        // The same names begun again keep the result (no rows yet).
        begin_named(&mut by_name);
        by_name.row(3, vec![Some("v".into()), None]);
        let got = by_name.finish().unwrap();
        assert_eq!(got.columns, ["a", "b\u{fffd}"]);
        assert_eq!(got.rows.len(), 1);
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
}
