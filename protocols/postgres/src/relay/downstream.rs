//! Server → client: places every server message in the model, swaps a
//! marker's error for its refusal, hides the server-side user, and masks
//! results.
//!
//! Why here: only the server's answers say what happened, so this side
//! is where the model moves. It must never forward a row it could not tie
//! to a statement's plan in a masking session: a message the model cannot
//! place ends the session (`RelayEnd::Desync`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use sqlgate_net::woken::Woken;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::model::{Answer, ParseEnd};
use super::shared::{write, RelayEnd, Shared, MAX_QUEUED, READ_CHUNK};
use crate::backend::set_param;
use crate::error::ProtocolError;
use crate::frame::{pass_over, peek_header, HEADER_LEN};
use crate::mask::{self, ActiveMask, Field, ResultMask};
use crate::messages::{backend_tag, error_response, parameter_status};
use sqlgate_net::outcome::{Outcome, OutcomeSink, Sampler};

/// Longest message the relay reads whole from a server other than a
/// masked DataRow.
const MAX_INSPECTED: usize = 1 << 20;
/// Longest message of any kind (PostgreSQL's own limit is 1 GiB).
const MAX_MESSAGE: usize = 1 << 30;
/// Longest DataRow a masking session holds whole to mask it; a longer one
/// ends the session with an error instead of taking the gateway's memory.
pub const MAX_MASKED_ROW: usize = 64 << 20;

/// Server → client.
pub(super) struct Downstream<'a> {
    skip: usize,
    /// Where each request's time to its ReadyForQuery goes.
    timings: Option<sqlgate_net::outcome::Timings>,
    shared: &'a Shared,
    params: &'a mut Vec<(String, String)>,
    /// The gateway user, shown as `session_authorization`.
    user: &'a str,
    last_tag: u8,
    masking: bool,
    /// DataRows of a result are passing (the model has placed the result;
    /// its rows need no lock each).
    in_rows: bool,
    /// The masks of the result whose rows are passing.
    active: Option<ActiveMask>,
    /// Output gathered when messages are rewritten.
    out: BytesMut,
    /// Where a masked row is written.
    scratch: BytesMut,
    /// Where a masked cell is written.
    cell: Vec<u8>,
    /// A masked row being read whole: its length.
    holding: Option<usize>,
    /// Its share of the process's budget for held rows
    /// (`sqlgate_net::budget`): the row and its masked copy.
    budget: Option<(usize, sqlgate_net::budget::Share)>,
    /// Where statement outcomes go, if anywhere.
    sink: Option<Arc<dyn OutcomeSink>>,
    /// DataRows since the last CommandComplete or error.
    rows: u64,
    /// Bytes sent since the last CommandComplete or error.
    bytes: u64,
    /// The message being placed reported an outcome (its bytes with it).
    reported: bool,
    /// Bytes sent in all.
    pub sent: u64,
    /// The first rows of the result passing, as the client receives them
    /// (when the sink keeps samples).
    sampler: Option<Sampler>,
    /// The column names of the last RowDescription (for the sample of an
    /// Execute without one).
    described: Arc<Vec<String>>,
    /// The body they were decoded from, when at most
    /// [`REMEMBERED_DESCRIPTION`] bytes (clients describe the same
    /// result again and again: it is decoded once).
    described_from: Vec<u8>,
}

/// The longest RowDescription whose column names are remembered.
const REMEMBERED_DESCRIPTION: usize = 4 << 10;

/// What becomes of a server message.
enum Rewrite {
    /// Forwarded as it is.
    Keep,
    /// Dropped (the answer to the relay's own Describe).
    Drop,
    /// Replaced by these bytes.
    With(BytesMut),
    /// Replaced by the masked row in `scratch`.
    Scratch,
}

impl<'a> Downstream<'a> {
    pub fn new(
        shared: &'a Shared,
        params: &'a mut Vec<(String, String)>,
        user: &'a str,
        masking: bool,
        sink: Option<Arc<dyn OutcomeSink>>,
    ) -> Self {
        Downstream {
            skip: 0,
            timings: None,
            shared,
            params,
            user,
            last_tag: 0,
            masking,
            in_rows: false,
            active: None,
            out: BytesMut::new(),
            scratch: BytesMut::new(),
            cell: Vec::new(),
            holding: None,
            budget: None,
            sampler: sink.as_ref().and_then(|s| Sampler::new(s.sample_limits())),
            sink,
            rows: 0,
            bytes: 0,
            reported: false,
            sent: 0,
            described: Arc::default(),
            described_from: Vec::new(),
        }
    }

    /// Reports each request's time to its ReadyForQuery.
    pub fn timed(mut self, timings: Option<sqlgate_net::outcome::Timings>) -> Self {
        self.timings = timings;
        self
    }

    /// Not inside a server message.
    pub fn between_messages(&self) -> bool {
        self.skip == 0
    }

    /// The type of the last message forwarded.
    pub fn last_tag(&self) -> u8 {
        self.last_tag
    }

    pub async fn run<R, W>(&mut self, rd: &mut R, wr: &mut W, buf: &mut BytesMut) -> RelayEnd
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        // One wait for the gateway's notices, kept from read to read and
        // polled only when it woke the task (a new one per read took the
        // notify's lock three times per read).
        let shared = self.shared;
        let mut notice = Woken::new(shared.notice.notified());
        loop {
            if let Err(e) = self.forward(wr, buf).await {
                return e;
            }
            match self.holding {
                // A large masked row: its memory comes from the budget,
                // and the buffer grows to it exactly.
                Some(total) if total > sqlgate_net::budget::SMALL => {
                    // A share for this row: a larger row than the one the
                    // share was taken for takes a new one.
                    let need = 2 * total;
                    if self.budget.as_ref().is_none_or(|(held, _)| *held < need) {
                        self.budget = None;
                        match sqlgate_net::budget::hold(need).await {
                            Ok(share) => self.budget = Some((need, share)),
                            Err(busy) => return RelayEnd::Limit(busy.into()),
                        }
                    }
                    // Never more than the row: a reserve past the buffer's
                    // end would double it (a second row's worth, copied).
                    buf.reserve(total.saturating_sub(buf.len()).max(1));
                }
                _ => {
                    if let Some((_, share)) = self.budget.take() {
                        // The held row is gone: so is its memory, before
                        // its share of the budget goes back.
                        release(buf);
                        drop(share);
                    }
                    buf.reserve(READ_CHUNK)
                }
            }
            // The gateway's own notices go out between messages only.
            if self.skip == 0 {
                for notice in self.shared.take_notices() {
                    if let Err(e) = write(wr, &notice).await {
                        return RelayEnd::ClientError(e.into());
                    }
                }
            }
            let read = if self.skip == 0 {
                tokio::select! {
                    // (No random start per read: notices wait for no
                    // read, they go out at the top of every turn.)
                    biased;
                    r = rd.read_buf(buf) => r,
                    // (`read_buf` is cancel-safe: nothing read is lost.)
                    _ = &mut notice => {
                        notice = Woken::new(shared.notice.notified());
                        continue;
                    }
                }
            } else {
                rd.read_buf(buf).await
            };
            match read {
                Ok(0) => return RelayEnd::ServerGone,
                Ok(_) => {}
                Err(e) => return RelayEnd::ServerError(e.into()),
            }
        }
    }

    /// Forwards everything forwardable in `buf`.
    async fn forward<W: AsyncWrite + Unpin>(
        &mut self,
        wr: &mut W,
        buf: &mut BytesMut,
    ) -> Result<(), RelayEnd> {
        let mut pos = 0;
        let mut emitted = 0;
        loop {
            if pass_over(&mut self.skip, &mut pos, buf.len()) {
                break;
            }
            let header = peek_header(&buf[pos..], MAX_MESSAGE).map_err(RelayEnd::ServerError)?;
            let Some((tag, total)) = header else { break };
            if tag == b'D' && self.holding.is_none() {
                self.rows += 1;
            }
            // A row the sample keeps is read whole first.
            let sampled = tag == b'D'
                && self
                    .sampler
                    .as_ref()
                    .is_some_and(|s| s.wants(total - HEADER_LEN));
            if sampled {
                if buf.len() - pos < total {
                    self.holding = Some(total);
                    break;
                }
                self.holding = None;
            }
            let rewrite = if tag == b'D' && self.in_rows {
                // The hot path of a result: its rows, placed already.
                match &self.active {
                    None => Rewrite::Keep,
                    Some(a) => {
                        if hold_row(buf, pos, total)?.is_none() {
                            self.holding = Some(total);
                            break;
                        }
                        self.holding = None;
                        let row = &mut buf[pos + HEADER_LEN..pos + total];
                        // A row whose masked cells keep their length is
                        // masked where it lies and streams on.
                        if mask::mask_data_row_in_place(row, a) {
                            Rewrite::Keep
                        } else {
                            self.mask_row(&buf[pos + HEADER_LEN..pos + total])
                                .map_err(RelayEnd::ServerError)?
                        }
                    }
                }
            } else {
                let body = match self.body_limit(tag) {
                    Some(_) if tag == b'D' => match hold_row(buf, pos, total)? {
                        Some(body) => {
                            self.holding = None;
                            body
                        }
                        None => {
                            self.holding = Some(total);
                            break;
                        }
                    },
                    Some(max) => match inspected(buf, pos, tag, total, max)? {
                        Some(body) => body,
                        None => break,
                    },
                    None => &[][..],
                };
                self.observe(tag, body).map_err(|e| match e {
                    e @ ProtocolError::Desync { .. } => RelayEnd::Desync(e),
                    e => RelayEnd::ServerError(e),
                })?
            };
            if tag == b'D' {
                if let Some(sampler) = &mut self.sampler {
                    // The row as it leaves for the client: masked.
                    let seen = match &rewrite {
                        _ if !sampled => None,
                        Rewrite::Keep => buf.get(pos + HEADER_LEN..pos + total),
                        Rewrite::Scratch => self.scratch.get(HEADER_LEN..),
                        Rewrite::With(_) | Rewrite::Drop => None,
                    };
                    match seen {
                        // Before any description: the last one names
                        // its columns if it has as many.
                        Some(row) => {
                            sampler.row(total - HEADER_LEN, Some(&self.described), |values| {
                                mask::data_row_values(row, values)
                            })
                        }
                        None => sampler.skipped(),
                    }
                }
            }
            self.last_tag = tag;
            if !matches!(rewrite, Rewrite::Keep) {
                debug_assert!(
                    buf.len() - pos >= total,
                    "only whole messages are rewritten"
                );
                // Rewritten messages gather with what came before them
                // and go out in one write.
                self.out.extend_from_slice(&buf[emitted..pos]);
                match rewrite {
                    Rewrite::With(bytes) => self.out.extend_from_slice(&bytes),
                    Rewrite::Scratch if self.scratch.len() >= READ_CHUNK => {
                        // A large masked row goes out from where it was
                        // written, not copied once more.
                        write(wr, &self.out)
                            .await
                            .map_err(|e| RelayEnd::ClientError(e.into()))?;
                        self.out.clear();
                        write(wr, &self.scratch)
                            .await
                            .map_err(|e| RelayEnd::ClientError(e.into()))?;
                        self.scratch = BytesMut::new();
                    }
                    Rewrite::Scratch => {
                        self.out.extend_from_slice(&self.scratch);
                        self.scratch.clear();
                    }
                    Rewrite::Keep | Rewrite::Drop => {}
                }
                emitted = pos + total;
                if self.out.len() >= READ_CHUNK {
                    write(wr, &self.out)
                        .await
                        .map_err(|e| RelayEnd::ClientError(e.into()))?;
                    self.out.clear();
                }
            }
            self.skip = total;
            // A message that reported an outcome counted itself in it.
            if std::mem::take(&mut self.reported) {
                self.bytes = 0;
            } else {
                self.bytes += total as u64;
            }
            self.sent += total as u64;
        }
        if !self.out.is_empty() {
            self.out.extend_from_slice(&buf[emitted..pos]);
            write(wr, &self.out)
                .await
                .map_err(|e| RelayEnd::ClientError(e.into()))?;
            self.out.clear();
        } else if pos > emitted {
            write(wr, &buf[emitted..pos])
                .await
                .map_err(|e| RelayEnd::ClientError(e.into()))?;
        }
        buf.advance(pos);
        Ok(())
    }

    /// Hands an outcome to the sink (rows counted for the next one start
    /// again).
    fn report(&mut self, outcome: &Outcome<'_>) {
        self.rows = 0;
        self.reported = true;
        if let Some(sink) = &self.sink {
            sink.outcome(outcome);
        }
    }

    /// Whether (and up to what length) a message must be read whole.
    fn body_limit(&self, tag: u8) -> Option<usize> {
        match tag {
            // An error may be swapped for a refusal: it is replaced whole.
            backend_tag::READY_FOR_QUERY
            | backend_tag::PARAMETER_STATUS
            | backend_tag::ERROR_RESPONSE => Some(MAX_INSPECTED),
            b'T' | b't' | b'n' | b'N' | b'C' if self.masking => Some(MAX_INSPECTED),
            // Its column names head the sample.
            b'T' if self.sampler.is_some() => Some(MAX_INSPECTED),
            // Its tag is the statement's outcome.
            b'C' if self.sink.is_some() => Some(MAX_INSPECTED),
            // The first row of an Execute: its columns are counted.
            b'D' if self.masking => Some(MAX_MESSAGE),
            _ => None,
        }
    }

    /// One server message other than a placed result's row: moves the
    /// model and says how the message is rewritten.
    fn observe(&mut self, tag: u8, body: &[u8]) -> Result<Rewrite, ProtocolError> {
        match tag {
            backend_tag::PARAMETER_STATUS => return Ok(self.parameter_status(body)),
            // NotificationResponse answers nothing.
            b'A' => return Ok(Rewrite::Keep),
            b'N' => {
                if !self.masking {
                    return Ok(Rewrite::Keep);
                }
                let mask = self.shared.model().current_mask();
                return scrub(tag, body, mask);
            }
            _ => {}
        }
        let (answer, scrub_with) = {
            let mut model = self.shared.model();
            let before = model.len();
            let scrub_with = match tag {
                b'E' if self.masking => model.current_mask(),
                _ => None,
            };
            let answer = model.answer(tag, body)?;
            if let (Some(timings), Some(took)) = (&self.timings, model.took.take()) {
                timings(took);
            }
            if let Some(sink) = &self.sink {
                // How the client's Parses ended, in the order it sent them.
                for end in model.take_parses() {
                    match end {
                        ParseEnd::Answered { name, ok } => sink.statement_prepared(&name, ok),
                        ParseEnd::UnnamedDropped => sink.unnamed_statement_dropped(),
                    }
                }
            }
            if before >= MAX_QUEUED && model.len() < MAX_QUEUED {
                self.shared.room.notify_one();
            }
            if model.idle() && self.shared.draining.load(Ordering::Relaxed) {
                self.shared.idle.notify_one();
            }
            (answer, scrub_with)
        };
        self.active = None;
        self.in_rows = false;
        if tag == b'C' && self.sink.is_some() {
            let tag = body.strip_suffix(&[0]).unwrap_or(body);
            // `INSERT 0 1`, `UPDATE 3`, `SELECT 5`: the count is the tag's
            // last word; otherwise the rows that passed.
            let rows = tag_count(tag).unwrap_or(self.rows);
            let tag = sqlgate_net::sample::lossy(tag);
            let bytes = self.bytes + body.len() as u64 + HEADER_LEN as u64;
            // The sample is lent, not moved: its buffers serve the next
            // result.
            let sample = self.sampler.as_mut().and_then(Sampler::finished);
            if let Some(sink) = &self.sink {
                sink.outcome(&Outcome::Done {
                    tag,
                    rows,
                    bytes,
                    sample: sample.map(std::borrow::Cow::Borrowed),
                });
            }
            self.rows = 0;
            self.reported = true;
        }
        if matches!(answer, Answer::Ready) {
            // A description no rows followed belongs to no later result.
            if let Some(sampler) = &mut self.sampler {
                sampler.finished();
            }
        }
        Ok(match answer {
            Answer::Pass | Answer::Ready => match tag {
                b'E' => {
                    let rewrite = scrub(tag, body, scrub_with)?;
                    if self.sink.is_some() {
                        // The error as the client sees it.
                        let seen = match &rewrite {
                            Rewrite::With(bytes) => bytes.get(HEADER_LEN..).unwrap_or_default(),
                            _ => body,
                        };
                        let field = |c| {
                            error_response::field(seen, c)
                                .map(|v| String::from_utf8_lossy(v).into_owned())
                                .unwrap_or_default()
                        };
                        if let Some(sampler) = &mut self.sampler {
                            sampler.finished();
                        }
                        let bytes = self.bytes + seen.len() as u64 + HEADER_LEN as u64;
                        self.report(&Outcome::Failed {
                            code: field(b'C'),
                            message: field(b'M'),
                            bytes,
                        });
                    }
                    return Ok(rewrite);
                }
                _ => Rewrite::Keep,
            },
            Answer::Refusal(error) => Rewrite::With(error),
            Answer::Own => Rewrite::Drop,
            Answer::Described { mask, rows } => {
                self.in_rows = rows;
                // Decoded once, for the mask (which needs it whole) and
                // the sample's names alike.
                let masked = match &mask {
                    Some(_) => Some(
                        mask::decode_row_description(body)
                            .ok_or_else(|| ProtocolError::malformed("RowDescription"))?,
                    ),
                    None => None,
                };
                if let Some(sampler) = &mut self.sampler {
                    let known = !self.described_from.is_empty() && body == &self.described_from[..];
                    let decoded;
                    let fields = match (&masked, known) {
                        (_, true) => None,
                        (Some(f), false) => Some(f),
                        (None, false) => {
                            decoded = mask::decode_row_description(body);
                            decoded.as_ref()
                        }
                    };
                    if let Some(fields) = fields {
                        self.described =
                            Arc::new(fields.iter().map(|f| mask::shown_name(&f.name)).collect());
                        self.described_from.clear();
                        if body.len() <= REMEMBERED_DESCRIPTION {
                            self.described_from.extend_from_slice(body);
                        }
                    }
                    if known || fields.is_some() {
                        sampler.begin(self.described.clone());
                    }
                }
                let (Some(mask), Some(fields)) = (mask, masked) else {
                    return Ok(Rewrite::Keep);
                };
                let active = activate(&mask, fields);
                let told = active.as_ref().map_or(Rewrite::Keep, described);
                if rows {
                    self.active = active;
                }
                told
            }
            Answer::ExecuteRows {
                mask,
                fields,
                formats,
            } => {
                self.in_rows = true;
                if let Some(sampler) = &mut self.sampler {
                    // Its columns: as the relay followed them, or else the
                    // last description if it has as many (a client that
                    // described the statement when it prepared it).
                    // (the latter when its first row is sampled).
                    if let Some(f) = fields.get() {
                        sampler.begin_named(f.iter().map(|f| &f.name[..]));
                    }
                }
                let Some(mask) = mask else {
                    return Ok(Rewrite::Keep);
                };
                let columns = mask::data_row_columns(body)
                    .ok_or_else(|| ProtocolError::malformed("DataRow"))?;
                self.active = activate(&mask, execute_fields(fields.get(), &formats, columns));
                self.mask_row(body)?
            }
        })
    }

    /// ParameterStatus: kept for the next greeting; the server-side user
    /// is hidden behind the gateway user.
    fn parameter_status(&mut self, body: &[u8]) -> Rewrite {
        let Some((name, value)) = parameter_status::decode(body) else {
            return Rewrite::Keep;
        };
        if name == "session_authorization" {
            let mut out = BytesMut::new();
            parameter_status::encode(name, self.user, &mut out);
            return Rewrite::With(out);
        }
        set_param(self.params, name.to_owned(), value.to_owned());
        Rewrite::Keep
    }

    /// Rewrites a row of the active masked result into `scratch`.
    fn mask_row(&mut self, body: &[u8]) -> Result<Rewrite, ProtocolError> {
        let Some(a) = &self.active else {
            return Ok(Rewrite::Keep);
        };
        self.scratch.clear();
        mask::mask_data_row(body, a, &mut self.scratch, &mut self.cell)
            .ok_or_else(|| ProtocolError::malformed("DataRow"))?;
        Ok(Rewrite::Scratch)
    }
}

/// An error or notice under the mask of the statement it is about: texts
/// that could quote masked values are scrubbed.
fn scrub(
    tag: u8,
    body: &[u8],
    mask: Option<Arc<dyn ResultMask>>,
) -> Result<Rewrite, ProtocolError> {
    let how = mask.map_or(mask::Scrub::Keep, |m| m.scrub());
    if how == mask::Scrub::Keep {
        return Ok(Rewrite::Keep);
    }
    let mut out = BytesMut::new();
    mask::scrub_notice(tag, body, how, &mut out)
        .ok_or_else(|| ProtocolError::malformed("ErrorResponse"))?;
    Ok(Rewrite::With(out))
}

/// The masks of a result with these columns, if any column is masked.
fn activate(mask: &Arc<dyn ResultMask>, fields: Vec<Field>) -> Option<ActiveMask> {
    let cells = mask.columns(&fields)?;
    cells
        .iter()
        .any(Option::is_some)
        .then_some(ActiveMask { fields, cells })
}

/// The RowDescription the client is told for a masked result.
fn described(active: &ActiveMask) -> Rewrite {
    let mut out = BytesMut::new();
    mask::encode_row_description(&mask::client_fields(active), &mut out);
    Rewrite::With(out)
}

/// The count a command tag ends with (`SELECT 5`, `INSERT 0 1`): its
/// last word, when that is a number.
/// Read as `str::parse::<u64>` reads it (a leading `+`, no overflow),
/// without a check of the whole tag's UTF-8.
fn tag_count(tag: &[u8]) -> Option<u64> {
    let last = tag.rsplit(|&b| b == b' ').next()?;
    let digits = last.strip_prefix(b"+").unwrap_or(last);
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The columns of an Execute's rows: the statement's, as described to
/// the relay, in the portal's formats (unknown columns when the
/// description is missing or disagrees with the rows).
fn execute_fields(described: Option<&Vec<Field>>, formats: &[i16], columns: usize) -> Vec<Field> {
    let unknown = |_| Field {
        name: Vec::new(),
        table_oid: 0,
        column: 0,
        type_oid: 0,
        type_len: -1,
        type_mod: -1,
        format: 0,
    };
    let mut fields = match described {
        Some(f) if f.len() == columns => f.clone(),
        _ => (0..columns).map(unknown).collect(),
    };
    for (i, f) in fields.iter_mut().enumerate() {
        f.format = mask::format_of(formats, i);
    }
    fields
}

/// Gives back the memory a large held message left in `buf`, always: once
/// the message is forwarded (`advance`), `capacity()` counts only what is
/// left after it, not the allocation, which `reserve` would reuse — and
/// the buffer goes back to the pool with its server connection, where no
/// budget counts it.
pub(crate) fn release(buf: &mut BytesMut) {
    let mut small = BytesMut::with_capacity(READ_CHUNK.max(buf.len()));
    small.extend_from_slice(buf);
    *buf = small;
}

/// A DataRow a masking session holds whole, once it is all in `buf`
/// (`None`: read more first); past [`MAX_MASKED_ROW`], the session ends.
fn hold_row(buf: &[u8], pos: usize, total: usize) -> Result<Option<&[u8]>, RelayEnd> {
    if total > MAX_MASKED_ROW {
        return Err(RelayEnd::Limit(ProtocolError::TooLong {
            tag: b'D',
            len: total,
            max: MAX_MASKED_ROW,
        }));
    }
    Ok((buf.len() - pos >= total).then(|| &buf[pos + HEADER_LEN..pos + total]))
}

/// The body of a server message the relay must read whole, once it is
/// all in `buf` (`None`: read more first).
fn inspected(
    buf: &[u8],
    pos: usize,
    tag: u8,
    total: usize,
    max: usize,
) -> Result<Option<&[u8]>, RelayEnd> {
    if total > max {
        return Err(RelayEnd::ServerError(ProtocolError::TooLong {
            tag,
            len: total,
            max,
        }));
    }
    Ok((buf.len() - pos >= total).then(|| &buf[pos + HEADER_LEN..pos + total]))
}

#[cfg(test)]
mod tag_count_tests {
    use super::tag_count;

    #[test]
    fn a_tags_count_reads_as_str_parse_reads_its_last_word() {
        let words = [
            "",
            "0",
            "1",
            "+5",
            "-5",
            "+",
            "++5",
            "5+",
            "007",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "1a",
            "٣",
            "1 ",
            "\u{0}",
        ];
        for w in words {
            for tag in [w.to_owned(), format!("SELECT {w}"), format!("INSERT 0 {w}")] {
                let expected = tag.rsplit(' ').next().and_then(|l| l.parse::<u64>().ok());
                assert_eq!(tag_count(tag.as_bytes()), expected, "{tag:?}");
            }
        }
        assert_eq!(tag_count(b"SELECT \xff1"), None);
    }
}
