//! The line form of a session's events grouped in one [`super::Kind::Events`]
//! record: `kind`, a tab, its time, a tab, its JSON. Why a module of its
//! own: the mailbox writes lines, and readers ([`super::events`]) and the
//! writer's cut of a refused statement after a failed commit read them;
//! all three must agree on what a line's time is.
//!
//! A line's time is microseconds since the Unix epoch, or, for a line
//! after the first of its piece, `+` and the microseconds since the line
//! before it. A read records two lines, a statement and its outcome; two
//! full times were 32 of its ~215 bytes, and every byte is written,
//! hashed, synced and checkpointed.
//!
//! This module must never read a line's time as other than the time it
//! was written with: a relative time is read only after the line it is
//! relative to.

/// Writes `at_us` as a line's time: relative to `before` (the time of
/// the line written just before it in the same piece) when there is one
/// and time did not go back, absolute otherwise.
pub(super) fn write_time(out: &mut Vec<u8>, at_us: i64, before: Option<i64>) {
    match before.and_then(|b| u64::try_from(at_us.checked_sub(b)?).ok()) {
        Some(since) => {
            out.push(b'+');
            out.extend_from_slice(itoa::Buffer::new().format(since).as_bytes());
        }
        None => out.extend_from_slice(itoa::Buffer::new().format(at_us).as_bytes()),
    }
}

/// A line's three fields: kind, time, JSON (`None`: not a line).
pub(super) fn fields(line: &str) -> Option<(&str, &str, &str)> {
    let mut parts = line.splitn(3, '\t');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// The times of a piece's lines, read in order.
#[derive(Debug, Default)]
pub(super) struct Times {
    before: Option<i64>,
}

impl Times {
    /// The time of the next line, from its time field (`None`: it does
    /// not parse, or is relative with no line before it to be relative
    /// to). A line whose time is unknown leaves the lines after it,
    /// when relative, unknown too.
    pub(super) fn next(&mut self, field: &str) -> Option<i64> {
        let at = match field.strip_prefix('+') {
            Some(since) => {
                let since = i64::try_from(since.parse::<u64>().ok()?).ok()?;
                self.before?.checked_add(since)
            }
            None => field.parse::<i64>().ok(),
        };
        self.before = at;
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(at_us: i64, before: Option<i64>) -> String {
        let mut out = Vec::new();
        write_time(&mut out, at_us, before);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_written_relative_read_back_as_written() {
        let written = [
            1_796_603_885_356_059,
            1_796_603_885_357_330,
            1_796_603_885_357_330,
            5,
            7,
            i64::MAX,
        ];
        let mut before = None;
        let mut times = Times::default();
        for at in written {
            let field = line(at, before);
            assert_eq!(times.next(&field), Some(at), "{field}");
            before = Some(at);
        }
        // Back in time: written absolute.
        assert_eq!(line(5, Some(9)), "5");
        assert_eq!(line(1_000_123, Some(1_000_000)), "+123");
    }

    #[test]
    fn a_relative_time_with_nothing_before_it_is_unknown() {
        let mut times = Times::default();
        assert_eq!(times.next("+5"), None);
        assert_eq!(times.next("+5"), None);
        assert_eq!(times.next("10"), Some(10));
        assert_eq!(times.next("x"), None);
        assert_eq!(times.next("+1"), None);
        assert_eq!(times.next("-3"), Some(-3));
        assert_eq!(times.next("+-3"), None);
        assert_eq!(times.next(&format!("{}", i64::MAX)), Some(i64::MAX));
        assert_eq!(times.next("+1"), None);
    }
}
