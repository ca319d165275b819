//! Where a server's response to one command ends. MySQL has no
//! ReadyForQuery: the gateway follows the shape of each response (OK, ERR,
//! result sets with their column definitions and rows, prepare answers,
//! multi-results) to know when the server is done, reading only the first
//! bytes of row packets and whole packets only for the small ones that
//! decide (OK, ERR, EOF, column counts).

use crate::error::ProtocolError;
use crate::messages::{lenenc_int, ok};
use crate::packet::{header, HEADER_LEN, MAX_FRAGMENT};
use crate::sample::Tap;
use sqlgate_net::outcome::Outcome;

/// Longest packet the tracker holds whole (an OK with session-state
/// information, an ERR, a column count).
const MAX_INSPECTED: usize = 1 << 20;

/// What a command's response looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY, COM_STMT_EXECUTE: OK, ERR or result sets.
    Results,
    /// COM_STMT_FETCH: rows and a terminator.
    Rows,
    /// COM_STMT_PREPARE.
    Prepare,
    /// COM_FIELD_LIST: column definitions and a terminator.
    FieldList,
    /// One packet (OK, ERR, EOF, a statistics string).
    Single,
}

/// What the next packet of a response is, for masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The next fragment of a packet of 16 MiB or more.
    Continuation,
    /// The column count that starts a result set.
    ColumnCount,
    /// A column definition of a result set (`last`: the last one).
    ColumnDef {
        /// No more definitions follow.
        last: bool,
    },
    /// A row.
    Row,
    /// The EOF or OK after the rows of a result set.
    EndOfRows,
    /// An OK that answers a statement without a result set.
    Ok,
    /// Anything else.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Columns(u64),
    ColumnsEof,
    Rows,
    PrepareStart,
    PrepareParams {
        left: u64,
        columns: u64,
    },
    PrepareParamsEof {
        columns: u64,
    },
    PrepareColumns(u64),
    PrepareColumnsEof,
    FieldList,
    Single,
    /// The server asked for a LOCAL INFILE; the client's file comes next.
    Infile,
    Done,
}

/// Follows one response through the byte stream.
#[derive(Debug)]
pub struct Response {
    state: State,
    /// The session uses CLIENT_DEPRECATE_EOF (no EOF after column
    /// definitions; OK packets with header 0xFE end row sets).
    deprecate_eof: bool,
    /// Bytes of the current fragment still to pass.
    skip: usize,
    /// The current logical packet continues in the next fragment.
    continuing: bool,
    /// The last terminator's status flags.
    pub status: u16,
    /// Rows of the result set passing.
    rows: u64,
    /// The outcomes of the statements answered so far (at most
    /// [`MAX_OUTCOMES`]; a text holds at most as many statements).
    outcomes: Vec<Outcome<'static>>,
    /// Bytes of the response since the last outcome.
    bytes: u64,
    /// The first rows of each result set, when the recording keeps them.
    tap: Option<Tap>,
    /// A COM_STMT_PREPARE's answer: the statement id and its parameter
    /// count.
    pub prepared: Option<(u32, u16)>,
    /// Rows are passed by [`Response::pass_rows`] where nothing samples
    /// them (off only in the tests that hold it to the general walk).
    rows_fast: bool,
}

/// Outcomes one response keeps, at most.
const MAX_OUTCOMES: usize = 10_000;

impl Response {
    /// A tracker for the response to a command.
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::Results => State::Start,
            Expect::Rows => State::Rows,
            Expect::Prepare => State::PrepareStart,
            Expect::FieldList => State::FieldList,
            Expect::Single => State::Single,
        };
        Response {
            state,
            deprecate_eof,
            skip: 0,
            continuing: false,
            status: 0,
            rows: 0,
            outcomes: Vec::new(),
            bytes: 0,
            tap: None,
            prepared: None,
            rows_fast: true,
        }
    }

    /// Samples result sets with `tap` (which feeds rows itself only when
    /// `auto_rows`: nothing in the response is masked).
    pub fn with_tap(mut self, tap: Option<Tap>) -> Self {
        self.tap = tap;
        self
    }

    /// The tap, for a relay that feeds it rows after masking them.
    pub fn tap_mut(&mut self) -> Option<&mut Tap> {
        self.tap.as_mut()
    }

    /// The outcomes seen since the last call.
    pub fn take_outcomes(&mut self) -> Vec<Outcome<'static>> {
        std::mem::take(&mut self.outcomes)
    }

    fn outcome(&mut self, mut o: Outcome<'static>) {
        self.rows = 0;
        match &mut o {
            Outcome::Done { bytes, .. } | Outcome::Failed { bytes, .. } => {
                *bytes = std::mem::take(&mut self.bytes)
            }
        }
        if self.outcomes.len() < MAX_OUTCOMES {
            self.outcomes.push(o);
        }
    }

    /// True when the server waits for the client's LOCAL INFILE data.
    pub fn wants_client_data(&self) -> bool {
        self.state == State::Infile && self.skip == 0 && !self.continuing
    }

    /// The client's file has been sent: the server answers OK or ERR next.
    pub fn client_data_sent(&mut self) {
        self.state = State::Start;
    }

    /// What the packet starting with `first` (of length `len`) is, asked
    /// at a packet boundary before it is scanned.
    pub fn role(&self, first: Option<u8>, len: usize) -> Role {
        if self.continuing {
            return Role::Continuation;
        }
        match self.state {
            State::Start => match first {
                Some(0x00) => Role::Ok,
                Some(0xff) | Some(0xfb) | None => Role::Other,
                _ => Role::ColumnCount,
            },
            State::Columns(n) => Role::ColumnDef { last: n == 1 },
            State::Rows if first == Some(0xff) => Role::Other,
            State::Rows if self.is_terminator(first, len) => Role::EndOfRows,
            State::Rows => Role::Row,
            _ => Role::Other,
        }
    }

    /// True when the whole response has been seen.
    pub fn done(&self) -> bool {
        self.state == State::Done && self.skip == 0 && !self.continuing
    }

    /// Walks `buf` (bytes of this response, from where the last call
    /// stopped): returns how many bytes may be forwarded now. When
    /// [`Response::done`] turns true, the bytes after that are not part of
    /// the response.
    pub fn scan(&mut self, buf: &[u8]) -> Result<usize, ProtocolError> {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 || self.done() || self.wants_client_data() {
                    return Ok(pos);
                }
            }
            if self.rows_fast && self.state == State::Rows && self.tap.is_none() && !self.continuing
            {
                pos = self.pass_rows(buf, pos);
                if self.skip > 0 {
                    return Ok(pos);
                }
            }
            let Some((len, _seq)) = header(&buf[pos..]) else {
                return Ok(pos);
            };
            if self.continuing {
                self.continuing = len == MAX_FRAGMENT;
                self.skip = HEADER_LEN + len;
                continue;
            }
            if self.state == State::Done {
                return Err(ProtocolError::Unexpected(
                    "server data after the end of a response",
                ));
            }
            let available = buf.len() - pos;
            if len > 0 && available < HEADER_LEN + 1 {
                return Ok(pos);
            }
            let first = (len > 0).then(|| buf[pos + HEADER_LEN]);
            let role = self.role(first, len);
            let tapped = self.tap_wants(role, len);
            let needs_whole = self.needs_whole(first, len);
            if needs_whole || tapped {
                if len > MAX_INSPECTED {
                    return Err(ProtocolError::TooLong {
                        len,
                        max: MAX_INSPECTED,
                    });
                }
                if available < HEADER_LEN + len {
                    return Ok(pos);
                }
                let payload = &buf[pos + HEADER_LEN..pos + HEADER_LEN + len];
                if let (true, Some(tap)) = (tapped, &mut self.tap) {
                    match role {
                        Role::ColumnDef { .. } => tap.column(payload),
                        _ => tap.row(payload),
                    }
                }
                self.bytes += (HEADER_LEN + len) as u64;
                if needs_whole {
                    self.whole_packet(payload)?;
                } else {
                    self.passed_packet();
                }
            } else {
                if let (Role::Row, Some(tap)) = (role, &mut self.tap) {
                    if tap.auto_rows {
                        tap.skipped();
                    }
                }
                self.bytes += (HEADER_LEN + len) as u64;
                self.passed_packet();
            }
            self.continuing = len == MAX_FRAGMENT;
            self.skip = HEADER_LEN + len;
        }
    }

    /// Passes the rows at `pos` without a look at each row's role: a
    /// result set's rows are most of the packets a gateway forwards, and
    /// a row is told from what ends the rows by its first byte. Stops
    /// before the first packet that is not a plain row (an ERR, a
    /// terminator, a fragment of a long packet, a header or first byte
    /// not read yet), which the general walk takes; a row cut by the
    /// buffer's end is passed and the rest of it skipped, as that walk
    /// does. Only where nothing samples the rows (no tap).
    fn pass_rows(&mut self, buf: &[u8], mut pos: usize) -> usize {
        while let (Some((len, _)), Some(&next)) = (header(&buf[pos..]), buf.get(pos + HEADER_LEN)) {
            // An empty packet's "first byte" is the next packet's header.
            let first = (len > 0).then_some(next);
            if len == MAX_FRAGMENT || first == Some(0xff) || self.is_terminator(first, len) {
                break;
            }
            let whole = HEADER_LEN + len;
            self.bytes += whole as u64;
            self.rows += 1;
            let here = whole.min(buf.len() - pos);
            pos += here;
            if here < whole {
                self.skip = whole - here;
                break;
            }
        }
        pos
    }

    /// Whether the tap takes this packet whole: every column definition
    /// of a result set, rows while the sample has room (when it is fed
    /// here).
    fn tap_wants(&self, role: Role, len: usize) -> bool {
        // Never past what the tracker may hold whole: a longer packet
        // passes unsampled rather than end the session.
        if len > MAX_INSPECTED {
            return false;
        }
        match (&self.tap, role) {
            (Some(_), Role::ColumnDef { .. }) => true,
            (Some(tap), Role::Row) => tap.auto_rows && tap.wants(len),
            _ => false,
        }
    }

    fn is_terminator(&self, first: Option<u8>, len: usize) -> bool {
        first == Some(0xfe)
            && if self.deprecate_eof {
                len < MAX_FRAGMENT
            } else {
                len < 9
            }
    }

    fn needs_whole(&self, first: Option<u8>, len: usize) -> bool {
        match self.state {
            State::Start
            | State::ColumnsEof
            | State::PrepareStart
            | State::PrepareParamsEof { .. }
            | State::PrepareColumnsEof => true,
            State::Rows | State::FieldList => first == Some(0xff) || self.is_terminator(first, len),
            _ => false,
        }
    }

    /// A packet that decides where the response goes.
    fn whole_packet(&mut self, p: &[u8]) -> Result<(), ProtocolError> {
        let first = p.first().copied();
        self.state = match (self.state, first) {
            (_, Some(0xff)) => {
                if let Some(tap) = &mut self.tap {
                    tap.discard();
                }
                let code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
                // `#` and a five-character SQLSTATE precede the message.
                let message = match p.get(3) {
                    Some(b'#') => p.get(9..).unwrap_or_default(),
                    _ => p.get(3..).unwrap_or_default(),
                };
                self.outcome(Outcome::Failed {
                    code: code.to_string(),
                    message: String::from_utf8_lossy(message).into_owned(),
                    bytes: 0,
                });
                State::Done
            }
            (State::Start, Some(0x00)) => {
                self.status = ok::ok_status(p).ok_or(ProtocolError::Malformed("OK"))?;
                let affected = p.get(1..).and_then(lenenc_int).map_or(0, |(n, _)| n);
                self.outcome(Outcome::Done {
                    tag: "OK".into(),
                    rows: affected,
                    bytes: 0,
                    sample: None,
                });
                self.after_terminator()
            }
            // LOCAL INFILE request: servers send it only when the session
            // negotiated CLIENT_LOCAL_FILES, which the gateway offers only
            // when `local_infile` is enabled.
            (State::Start, Some(0xfb)) => State::Infile,
            (State::Start, Some(_)) => {
                let (n, _) = lenenc_int(p).ok_or(ProtocolError::Malformed("column count"))?;
                if n == 0 {
                    return Err(ProtocolError::Malformed("column count"));
                }
                if let Some(tap) = &mut self.tap {
                    tap.begin();
                }
                State::Columns(n)
            }
            (State::ColumnsEof, Some(0xfe)) => {
                self.status = ok::terminator_status(p).ok_or(ProtocolError::Malformed("EOF"))?;
                if self.status & ok::STATUS_CURSOR_EXISTS != 0 {
                    State::Done
                } else {
                    State::Rows
                }
            }
            (State::Rows, Some(0xfe)) | (State::FieldList, Some(0xfe)) => {
                self.status = ok::terminator_status(p).ok_or(ProtocolError::Malformed("EOF"))?;
                if self.state == State::FieldList {
                    State::Done
                } else {
                    let rows = self.rows;
                    let sample = self.tap.as_mut().and_then(Tap::finish);
                    self.outcome(Outcome::Done {
                        tag: "ROWS".into(),
                        rows,
                        bytes: 0,
                        sample: sample.map(std::borrow::Cow::Owned),
                    });
                    self.after_terminator()
                }
            }
            (State::PrepareStart, Some(0x00)) => {
                let field = |at: usize| -> Result<u64, ProtocolError> {
                    let b = p
                        .get(at..at + 2)
                        .ok_or(ProtocolError::Malformed("prepare OK"))?;
                    Ok(u16::from_le_bytes([b[0], b[1]]) as u64)
                };
                let (columns, params) = (field(5)?, field(7)?);
                let id = p.get(1..5).ok_or(ProtocolError::Malformed("prepare OK"))?;
                self.prepared = Some((
                    u32::from_le_bytes([id[0], id[1], id[2], id[3]]),
                    params as u16,
                ));
                if params > 0 {
                    State::PrepareParams {
                        left: params,
                        columns,
                    }
                } else {
                    self.prepare_columns(columns)
                }
            }
            (State::PrepareParamsEof { columns }, Some(0xfe)) => self.prepare_columns(columns),
            (State::PrepareColumnsEof, Some(0xfe)) => State::Done,
            _ => return Err(ProtocolError::Unexpected("packet in a response")),
        };
        Ok(())
    }

    /// A packet passed without reading it (a column definition or a row).
    fn passed_packet(&mut self) {
        self.state = match self.state {
            State::Columns(1) if self.deprecate_eof => State::Rows,
            State::Columns(1) => State::ColumnsEof,
            State::Columns(n) => State::Columns(n - 1),
            State::PrepareParams { left: 1, columns } if self.deprecate_eof => {
                self.prepare_columns(columns)
            }
            State::PrepareParams { left: 1, columns } => State::PrepareParamsEof { columns },
            State::PrepareParams { left, columns } => State::PrepareParams {
                left: left - 1,
                columns,
            },
            State::PrepareColumns(1) if self.deprecate_eof => State::Done,
            State::PrepareColumns(1) => State::PrepareColumnsEof,
            State::PrepareColumns(n) => State::PrepareColumns(n - 1),
            State::Single => State::Done,
            State::Rows => {
                self.rows += 1;
                State::Rows
            }
            other => other,
        };
    }

    fn after_terminator(&self) -> State {
        if self.status & ok::STATUS_MORE_RESULTS != 0 {
            State::Start
        } else {
            State::Done
        }
    }

    fn prepare_columns(&self, columns: u64) -> State {
        if columns > 0 {
            State::PrepareColumns(columns)
        } else {
            State::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::encode;

    fn wire(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut seq = 1;
        for p in packets {
            seq = encode(seq, p, &mut out);
        }
        out
    }

    fn eof(status: u16) -> Vec<u8> {
        let mut p = vec![0xfe, 0, 0];
        p.extend_from_slice(&status.to_le_bytes());
        p
    }

    fn ok_fe(status: u16) -> Vec<u8> {
        let mut p = ok::payload(status);
        p[0] = 0xfe;
        p
    }

    /// Feeds the response in every chunk size and checks where it ends.
    fn check(expect: Expect, deprecate_eof: bool, packets: &[Vec<u8>]) {
        let mut bytes = wire(packets);
        let end = bytes.len();
        bytes.extend_from_slice(&[1, 0, 0, 0, 0x00]); // what follows is not ours
        for size in [1, 2, 3, 5, 7, 13, 100, usize::MAX] {
            let mut r = Response::new(expect, deprecate_eof);
            let mut fed = 0;
            let mut forwarded = 0;
            while !r.done() {
                assert!(fed < bytes.len(), "chunks of {size}: never done");
                fed = (fed + size.min(bytes.len())).min(bytes.len());
                forwarded += r.scan(&bytes[forwarded..fed]).unwrap();
            }
            assert_eq!(forwarded, end, "chunks of {size}");
        }
    }

    fn row(text: &[u8]) -> Vec<u8> {
        let mut p = vec![text.len() as u8];
        p.extend_from_slice(text);
        p
    }

    #[test]
    fn results_with_and_without_eof() {
        let col = vec![3, b'd', b'e', b'f', 0, 0, 0];
        check(
            Expect::Results,
            false,
            &[
                vec![2],
                col.clone(),
                col.clone(),
                eof(0),
                row(b"a"),
                row(b""),
                eof(2),
            ],
        );
        check(
            Expect::Results,
            true,
            &[vec![2], col.clone(), col.clone(), row(b"a"), ok_fe(2)],
        );
        // multi-results: OK with MORE_RESULTS, then a result set, then OK.
        check(
            Expect::Results,
            true,
            &[
                ok::payload(ok::STATUS_MORE_RESULTS),
                vec![1],
                col.clone(),
                row(b"x"),
                ok_fe(ok::STATUS_MORE_RESULTS),
                ok::payload(2),
            ],
        );
        // an error in the middle of rows ends it.
        check(
            Expect::Results,
            false,
            &[
                vec![1],
                col.clone(),
                eof(0),
                row(b"1"),
                vec![0xff, 0x10, 0x04, b'#', b'H', b'Y', b'0', b'0', b'0', b'x'],
            ],
        );
        // a cursor: column definitions only.
        check(
            Expect::Results,
            false,
            &[vec![1], col.clone(), eof(ok::STATUS_CURSOR_EXISTS)],
        );
    }

    /// What a walk saw: the bytes forwarded at each call (or its error),
    /// whether the response was done, its status, and its outcomes' rows
    /// and bytes.
    type Walked = (Vec<Result<usize, String>>, bool, u16, Vec<(u64, u64)>);

    /// A walk over `bytes` in chunks of `sizes` (cycled).
    fn walk(fast: bool, deprecate_eof: bool, bytes: &[u8], sizes: &[usize]) -> Walked {
        let mut r = Response::new(Expect::Results, deprecate_eof);
        r.rows_fast = fast;
        let (mut fed, mut forwarded, mut seen) = (0, 0, Vec::new());
        for size in sizes.iter().cycle() {
            if r.done() || fed == bytes.len() {
                break;
            }
            fed = (fed + size).min(bytes.len());
            match r.scan(&bytes[forwarded..fed]) {
                Ok(n) => {
                    forwarded += n;
                    seen.push(Ok(n));
                }
                Err(e) => {
                    seen.push(Err(e.to_string()));
                    break;
                }
            }
        }
        let outcomes = r
            .take_outcomes()
            .iter()
            .map(|o| match o {
                Outcome::Done { rows, bytes, .. } => (*rows, *bytes),
                Outcome::Failed { bytes, .. } => (u64::MAX, *bytes),
            })
            .collect();
        (seen, r.done(), r.status, outcomes)
    }

    #[test]
    fn rows_passed_fast_are_walked_as_the_general_walk_does() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let col = vec![3, b'd', b'e', b'f', 0, 0, 0];
        for case in 0..3000 {
            let deprecate_eof = rng.random_bool(0.5);
            let mut packets = vec![vec![1], col.clone()];
            if !deprecate_eof {
                packets.push(eof(0));
            }
            for _ in 0..rng.random_range(0..12) {
                // Rows whose first byte is what ends rows elsewhere: a
                // NULL (0xfb), a long length (0xfe, 9 bytes or more), an
                // empty row, and plain ones.
                let row = match rng.random_range(0..5) {
                    0 => vec![0xfb],
                    1 => {
                        let mut r = vec![0xfe];
                        r.resize(rng.random_range(9..40), b'x');
                        r
                    }
                    2 => Vec::new(),
                    _ => row(&vec![b'v'; rng.random_range(0..300)]),
                };
                packets.push(row);
            }
            packets.push(match rng.random_range(0..4) {
                0 => vec![0xff, 0x10, 0x04, b'#', b'H', b'Y', b'0', b'0', b'0', b'x'],
                1 if deprecate_eof => ok_fe(ok::STATUS_MORE_RESULTS),
                _ if deprecate_eof => ok_fe(2),
                _ => eof(2),
            });
            if case % 500 == 0 {
                // A row of fragments (16 MiB and more).
                let mut big = vec![0xfe];
                big.resize(MAX_FRAGMENT + 10, b'y');
                packets.insert(packets.len() - 1, big);
            }
            let mut bytes = wire(&packets);
            // More results or what follows the response.
            bytes.extend_from_slice(&wire(&[vec![1], col.clone(), row(b"z"), eof(0)]));
            let sizes: Vec<usize> = (0..rng.random_range(1..6))
                .map(|_| rng.random_range(1..600))
                .collect();
            assert_eq!(
                walk(true, deprecate_eof, &bytes, &sizes),
                walk(false, deprecate_eof, &bytes, &sizes),
                "case {case}: {packets:?} in chunks of {sizes:?}"
            );
        }
    }

    #[test]
    fn big_rows_span_fragments() {
        let col = vec![3, b'd', b'e', b'f'];
        let mut big = vec![0xfe];
        big.extend_from_slice(&(20u64 << 20).to_le_bytes());
        big.resize(20 << 20, b'x');
        check(Expect::Results, true, &[vec![1], col, big, ok_fe(0)]);
    }

    #[test]
    fn prepare_answers() {
        let col = vec![3, b'd', b'e', b'f'];
        let prep = |cols: u16, params: u16| {
            let mut p = vec![0, 1, 0, 0, 0];
            p.extend_from_slice(&cols.to_le_bytes());
            p.extend_from_slice(&params.to_le_bytes());
            p.extend_from_slice(&[0, 0, 0]);
            p
        };
        check(
            Expect::Prepare,
            false,
            &[
                prep(1, 2),
                col.clone(),
                col.clone(),
                eof(0),
                col.clone(),
                eof(0),
            ],
        );
        check(
            Expect::Prepare,
            true,
            &[prep(1, 2), col.clone(), col.clone(), col.clone()],
        );
        check(Expect::Prepare, false, &[prep(0, 0)]);
        check(Expect::Single, false, &[ok::payload(0)]);
        check(Expect::FieldList, false, &[col.clone(), col, eof(0)]);
    }

    #[test]
    fn local_infile_hands_over_to_the_client() {
        let mut r = Response::new(Expect::Results, false);
        let mut bytes = wire(&[b"\xfb/tmp/x".to_vec()]);
        let request_len = bytes.len();
        bytes.extend(wire(&[ok::payload(0)]));
        assert_eq!(
            r.scan(&bytes).unwrap(),
            request_len,
            "stops after the request"
        );
        assert!(r.wants_client_data() && !r.done());
        r.client_data_sent();
        assert_eq!(
            r.scan(&bytes[request_len..]).unwrap(),
            bytes.len() - request_len
        );
        assert!(r.done());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut r = Response::new(Expect::Prepare, false);
        assert!(r.scan(&wire(&[vec![0x42]])).is_err());
        let mut r = Response::new(Expect::Single, false);
        let mut two = wire(&[ok::payload(0)]);
        two.extend(wire(&[ok::payload(0)]));
        let n = r.scan(&two).unwrap();
        assert!(r.done());
        assert!(n < two.len());
    }
}
