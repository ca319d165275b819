//! A session's events on their way to the writer. Why: a message and a
//! body allocated per event, and the writer's work on each, were most of
//! what recording a read cost. Here a session appends each event, already
//! in its stored line form, to a buffer of its own under its own lock;
//! the writer takes the whole buffer when its group is due (one piece per
//! session and commit), and is woken by an event only when it sleeps with
//! nothing due, when an event waits to be durable, or when a buffer grows
//! large.
//!
//! This module must never reorder a session's events, take an event
//! after the session's end, or lose track of who waits for a durable
//! event.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use super::{Kind, StoreError};

/// Who waits for a durable record's commit (a relay's task).
pub(super) type Waiter = tokio::sync::oneshot::Sender<Result<(), StoreError>>;

/// Past this many buffered bytes the writer is woken to take them.
const LARGE: usize = 1 << 20;
/// A session's buffer when it first buffers an event.
const INITIAL: usize = 4096;
/// A busy session keeps its buffer up to this size between groups.
const KEPT: usize = 128 << 10;
/// Bytes a session reserves against the recorder's bound at a time, and
/// uses up event by event: the bound is one counter that every session
/// shares, and one update of it per event would move its cache line
/// between the CPUs at every event. What a session has not used goes
/// back when the writer takes its events (so at most this much per
/// session that recorded since the last group is reserved unused).
const CREDIT: usize = 16 << 10;

/// What sessions tell the writer, and how they wake it.
#[derive(Debug, Default)]
pub(super) struct Signals {
    /// Some session buffered an event since the writer last looked.
    dirty: AtomicBool,
    /// An event waits to be durable (or a buffer grew large).
    urgent: AtomicBool,
    writer: OnceLock<std::thread::Thread>,
}

impl Signals {
    /// Names the writer's thread (once, when it is started).
    pub(super) fn set_writer(&self, writer: std::thread::Thread) {
        let _ = self.writer.set(writer);
    }

    /// Wakes the writer (its next park returns at once).
    pub(super) fn wake(&self) {
        if let Some(w) = self.writer.get() {
            w.unpark();
        }
    }

    /// An event was buffered: the writer is woken only if it did not
    /// know yet (it then opens a group due within `flush_ms`). Under load
    /// this is one read of a flag that stays set.
    fn touched(&self) {
        if !self.dirty.load(Ordering::SeqCst) && !self.dirty.swap(true, Ordering::SeqCst) {
            self.wake();
        }
    }

    /// Something cannot wait for the group's time.
    fn hurry(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.urgent.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether anything was buffered since [`Signals::clear`].
    pub(super) fn dirty(&self) -> bool {
        self.dirty.load(Ordering::SeqCst)
    }

    /// Takes the urgent flag.
    pub(super) fn take_urgent(&self) -> bool {
        self.urgent.swap(false, Ordering::SeqCst)
    }

    /// The writer is about to take every buffer: what is buffered after
    /// this sets the flag again.
    pub(super) fn clear(&self) {
        self.dirty.store(false, Ordering::SeqCst);
    }
}

/// One session's buffer.
#[derive(Debug)]
pub(super) struct Mailbox {
    /// The session's id (shared: no copy per record).
    pub(super) session: Arc<str>,
    inbox: Mutex<Inbox>,
    signals: Arc<Signals>,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Events, one line each: `kind`, tab, time, tab, JSON (`line.rs`).
    lines: Vec<u8>,
    /// When the first of them happened, and the last.
    first_at: i64,
    last_at: i64,
    /// Statements among them, and how many of those were refused.
    statements: u64,
    refused: u64,
    /// Events that wait to be durable: where they are in `lines`.
    durable: Vec<(Range<usize>, Waiter)>,
    /// The session's end, once it ended: its time and body.
    end: Option<(i64, String)>,
    /// Nothing is taken any more (ended, or never known to the writer).
    closed: bool,
    /// Bytes reserved against the recorder's bound and not used yet.
    credit: usize,
}

/// What the writer takes from a mailbox.
#[derive(Debug)]
pub(super) struct Taken {
    /// The events' lines (empty when there were none).
    pub(super) lines: String,
    pub(super) first_at: i64,
    pub(super) statements: u64,
    pub(super) refused: u64,
    pub(super) durable: Vec<(Range<usize>, Waiter)>,
    /// The session's end, when it ended.
    pub(super) end: Option<(i64, String)>,
}

/// Why an event was not buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// The session's record is closed (it ended).
    Closed,
    /// The bytes waiting for the store are at their bound.
    Full,
}

impl Mailbox {
    pub(super) fn new(session: Arc<str>, signals: Arc<Signals>) -> Self {
        Mailbox {
            session,
            inbox: Mutex::new(Inbox::default()),
            signals,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event whose JSON `body` writes; `reserve` counts bytes
    /// against the recorder's bound (`false`: they do not fit), asked
    /// for [`CREDIT`] more than the event needs when the session's credit
    /// is short, or for exactly what it lacks when that does not fit.
    /// `durable`: who waits for its commit (the writer is woken).
    pub(super) fn push(
        &self,
        kind: Kind,
        at_us: i64,
        refused: bool,
        durable: Option<Waiter>,
        mut reserve: impl FnMut(usize) -> bool,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), (Refused, Option<Waiter>)> {
        let mut inbox = self.lock();
        if inbox.closed {
            return Err((Refused::Closed, durable));
        }
        let start = inbox.lines.len();
        // The first line of a piece the writer takes has its time whole.
        let before = (start > 0).then_some(inbox.last_at);
        let lines = &mut inbox.lines;
        if lines.capacity() == 0 {
            lines.reserve(INITIAL);
        }
        lines.extend_from_slice(kind.as_str().as_bytes());
        lines.push(b'\t');
        super::line::write_time(lines, at_us, before);
        lines.push(b'\t');
        body(lines);
        lines.push(b'\n');
        let end = lines.len();
        let need = end - start;
        if inbox.credit >= need {
            inbox.credit -= need;
        } else {
            let short = need - inbox.credit;
            if reserve(short + CREDIT) {
                inbox.credit = CREDIT;
            } else if reserve(short) {
                inbox.credit = 0;
            } else {
                inbox.lines.truncate(start);
                return Err((Refused::Full, durable));
            }
        }
        if start == 0 {
            inbox.first_at = at_us;
        }
        inbox.last_at = at_us;
        if kind == Kind::Statement {
            inbox.statements += 1;
            inbox.refused += u64::from(refused);
        }
        let hurry = durable.is_some() || end > LARGE;
        if let Some(w) = durable {
            inbox.durable.push((start..end, w));
        }
        drop(inbox);
        if hurry {
            self.signals.hurry();
        } else {
            self.signals.touched();
        }
        Ok(())
    }

    /// Records the session's end (`false`: it had ended already); nothing
    /// is buffered after it.
    pub(super) fn close(&self, at_us: i64, body: String) -> bool {
        let mut inbox = self.lock();
        if inbox.closed {
            return false;
        }
        inbox.closed = true;
        inbox.end = Some((at_us, body));
        drop(inbox);
        self.signals.touched();
        true
    }

    /// Closes a mailbox the writer never learnt of: nothing is buffered.
    pub(super) fn refuse_all(&self) {
        let mut inbox = self.lock();
        inbox.closed = true;
        inbox.lines = Vec::new();
    }

    /// Takes what is buffered (`None`: nothing), its lines copied into a
    /// buffer from `pool`, and adds the session's unused credit to
    /// `released` (for the writer to give back to the bound). The session
    /// keeps its own buffer while it is busy (no reallocation, and no
    /// fresh pages, each group) and gives it up once a group found it
    /// idle (an idle session holds none).
    pub(super) fn take(&self, pool: &mut Vec<Vec<u8>>, released: &mut usize) -> Option<Taken> {
        let mut inbox = self.lock();
        *released += std::mem::take(&mut inbox.credit);
        if inbox.lines.is_empty() && inbox.end.is_none() {
            inbox.lines = Vec::new();
            return None;
        }
        let mut lines = pool.pop().unwrap_or_default();
        lines.clear();
        lines.extend_from_slice(&inbox.lines);
        inbox.lines.clear();
        if inbox.lines.capacity() > KEPT {
            // A buffer that one large event grew is not kept: memory the
            // byte bound no longer counts.
            inbox.lines = Vec::new();
        }
        let taken = Taken {
            // Every line is ASCII around a body that `serde_json` wrote
            // or that was a `&str`: never invalid, kept whole if it were.
            lines: String::from_utf8(lines)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            first_at: inbox.first_at,
            statements: std::mem::take(&mut inbox.statements),
            refused: std::mem::take(&mut inbox.refused),
            durable: std::mem::take(&mut inbox.durable),
            end: inbox.end.take(),
        };
        if taken.end.is_some() {
            // The session is over: its buffer goes too.
            inbox.lines = Vec::new();
        }
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> Mailbox {
        Mailbox::new("s".into(), Arc::new(Signals::default()))
    }

    fn push(m: &Mailbox, body: &str) -> Result<(), Refused> {
        m.push(
            Kind::Statement,
            7,
            false,
            None,
            |_| true,
            |out| out.extend_from_slice(body.as_bytes()),
        )
        .map_err(|(r, _)| r)
    }

    #[test]
    fn bytes_are_reserved_a_block_at_a_time_and_what_is_unused_goes_back() {
        let m = mailbox();
        let bound = std::cell::Cell::new(CREDIT + 100);
        let reserved = std::cell::Cell::new(0);
        let asks = std::cell::Cell::new(0);
        let push = |body: &str| {
            m.push(
                Kind::Statement,
                7,
                false,
                None,
                |n| {
                    asks.set(asks.get() + 1);
                    if n > bound.get() {
                        return false;
                    }
                    bound.set(bound.get() - n);
                    reserved.set(reserved.get() + n);
                    true
                },
                |out| out.extend_from_slice(body.as_bytes()),
            )
            .map_err(|(r, _)| r)
        };
        // The first event reserves a block; the next ones use it up
        // without asking.
        push("{}").unwrap();
        push("{}").unwrap();
        assert_eq!(asks.get(), 1);
        // Near the bound: no block fits, exactly what is lacking does.
        let large = "x".repeat(CREDIT);
        push(&large).unwrap();
        assert_eq!(asks.get(), 3);
        // Past it: refused, nothing kept.
        assert_eq!(push(&large), Err(Refused::Full));
        let mut released = 0;
        let t = m.take(&mut Vec::new(), &mut released).unwrap();
        // What was reserved is what the lines hold plus what went back.
        assert_eq!(reserved.get(), t.lines.len() + released);
        assert_eq!(t.lines.matches('\n').count(), 3);
        // Given back once: a second take releases nothing.
        let mut again = 0;
        assert!(m.take(&mut Vec::new(), &mut again).is_none());
        assert_eq!(again, 0);
    }

    #[test]
    fn events_come_out_in_order_and_nothing_after_the_end() {
        let m = mailbox();
        let mut pool = Vec::new();
        assert!(m.take(&mut pool, &mut 0).is_none());
        push(&m, "{\"a\":1}").unwrap();
        push(&m, "{\"a\":2}").unwrap();
        let t = m.take(&mut pool, &mut 0).unwrap();
        assert_eq!(
            t.lines, "statement\t7\t{\"a\":1}\nstatement\t+0\t{\"a\":2}\n",
            "the first time whole, the next relative"
        );
        assert_eq!(t.statements, 2);
        push(&m, "{\"a\":3}").unwrap();
        assert!(m.close(9, "{}".into()));
        assert!(!m.close(9, "{}".into()));
        assert_eq!(push(&m, "{\"a\":4}"), Err(Refused::Closed));
        let t = m.take(&mut pool, &mut 0).unwrap();
        assert_eq!(
            t.lines, "statement\t7\t{\"a\":3}\n",
            "a new piece's first time is whole"
        );
        assert_eq!(t.end, Some((9, "{}".to_owned())));
    }

    #[test]
    fn a_buffer_one_large_event_grew_is_not_kept() {
        let m = mailbox();
        let mut pool = Vec::new();
        push(&m, &"x".repeat(4 * KEPT)).unwrap();
        assert!(m.take(&mut pool, &mut 0).is_some());
        assert_eq!(m.lock().lines.capacity(), 0);
        push(&m, "{}").unwrap();
        assert!(m.take(&mut pool, &mut 0).is_some());
        assert!(m.lock().lines.capacity() > 0, "a small buffer is kept");
    }

    #[test]
    fn an_event_past_the_bound_is_not_buffered() {
        let m = mailbox();
        let r = m.push(
            Kind::Outcome,
            1,
            false,
            None,
            |_| false,
            |out| out.extend_from_slice(b"{}"),
        );
        assert!(matches!(r, Err((Refused::Full, None))));
        assert!(m.take(&mut Vec::new(), &mut 0).is_none());
    }
}
