//! Responses whose result sets may be masked: the relay holds each
//! result set's column definitions until the last (they decide the
//! masks) and rewrites the rows of masked ones, whole packet by whole
//! packet. It must never forward a row of a masked result set unmasked.

use super::*;

/// Longest masked row: one that needs a second fragment is not rewritten.
const MAX_MASKED_ROW: usize = MAX_FRAGMENT - 1;

/// Output is written to the client once this much has gathered.
const OUT_CHUNK: usize = 64 * 1024;

/// What a masking session remembers between commands.
#[derive(Debug, Default)]
pub struct MaskState {
    /// Results of this session may be masked.
    pub(super) on: bool,
    /// The statements prepared in this session and their masks (`None`:
    /// the statement reads nothing masked), by statement id.
    pub(super) statements: HashMap<u32, Option<Arc<dyn ResultMask>>>,
    /// The masks of a statement's last result set (for COM_STMT_FETCH
    /// from its cursor), by statement id.
    pub(super) cursors: HashMap<u32, ActiveMask>,
    /// The id of the statement prepared last: MariaDB runs it for the id
    /// 0xFFFFFFFF.
    pub(super) last_prepared: Option<u32>,
    /// The mask of result sets beyond those a text's statements announced.
    pub(super) unknown: Option<Arc<dyn ResultMask>>,
}

impl MaskState {
    /// The state of a session whose judge says whether it masks.
    pub(super) fn of(judge: &mut dyn SessionHooks) -> Self {
        let on = judge.masking();
        MaskState {
            on,
            unknown: if on { judge.unknown_result() } else { None },
            ..MaskState::default()
        }
    }
}

/// How a response is masked.
pub(super) enum MaskPlan {
    /// COM_QUERY: one mask per statement, in order.
    Query(VecDeque<Arc<dyn ResultMask>>),
    /// COM_STMT_PREPARE: the statement id is remembered with its mask
    /// (none: the statement reads nothing masked), and as the last
    /// prepared.
    Prepare(Option<Arc<dyn ResultMask>>),
    /// COM_STMT_EXECUTE of a statement with a mask (binary rows).
    Execute(u32, Arc<dyn ResultMask>),
    /// COM_STMT_FETCH from a masked cursor (binary rows).
    Fetch(ActiveMask),
}

impl Relay<'_> {
    /// Forwards a response whose result sets may be masked, one whole
    /// packet at a time: column definitions are held until the last of a
    /// result set (they decide the masks, and masked columns may be
    /// reported as text), rows of masked result sets are rewritten.
    /// Output gathers and is written when the server has nothing more
    /// buffered, or in chunks.
    pub(super) async fn relay_masked(
        &mut self,
        expect: Expect,
        plan: MaskPlan,
        sbuf: &mut BytesMut,
    ) -> Result<(), Side> {
        let malformed = |what| Side::Server(ProtocolError::Malformed(what));
        let mut response =
            Response::new(expect, self.server.deprecate_eof()).with_tap(self.tap(false));
        let binary = !matches!(plan, MaskPlan::Query(_));
        // Result sets of a text beyond its statements' masks: fail-closed.
        let beyond = if binary {
            None
        } else {
            self.masks.unknown.clone()
        };
        let (mut queue, fixed, statement, mut active) = match plan {
            MaskPlan::Query(q) => (q, None, None, None),
            MaskPlan::Prepare(m) => (VecDeque::new(), m, None, None),
            MaskPlan::Execute(id, m) => (VecDeque::new(), Some(m), Some(id), None),
            MaskPlan::Fetch(a) => (VecDeque::new(), None, None, Some(a)),
        };
        let prepare = matches!(expect, Expect::Prepare);
        let mut current: Option<Arc<dyn ResultMask>> = None;
        let mut columns: Vec<Column> = Vec::new();
        let mut held: Vec<(u8, Vec<u8>)> = Vec::new();
        let mut out: Vec<u8> = Vec::with_capacity(OUT_CHUNK);
        let mut spans = Vec::new();
        let mut budget: Option<sqlgate_net::budget::Share> = None;
        loop {
            if response.done() {
                if !sbuf.is_empty() {
                    return Err(Side::Server(ProtocolError::Unexpected(
                        "server data after the end of a response",
                    )));
                }
                self.report(&mut response);
                break;
            }
            if response.wants_client_data() {
                self.flush_out(&mut out).await?;
                self.pass_infile().await?;
                response.client_data_sent();
                continue;
            }
            let whole = header(sbuf).filter(|(len, _)| sbuf.len() >= HEADER_LEN + len);
            let Some((len, seq)) = whole else {
                if sbuf.len() < HEADER_LEN || !out.is_empty() {
                    self.flush_out(&mut out).await?;
                }
                match header(sbuf) {
                    // A large packet held whole: its memory (and its masked
                    // copy's) comes from the process's budget first.
                    Some((len, _)) if len > sqlgate_net::budget::SMALL => {
                        if budget.is_none() {
                            let share = sqlgate_net::budget::hold(2 * len).await;
                            budget = Some(share.map_err(|b| Side::Server(b.into()))?);
                        }
                        sbuf.reserve((HEADER_LEN + len).saturating_sub(sbuf.len()));
                    }
                    _ => sbuf.reserve(READ_CHUNK),
                }
                match self.server.stream.io.read_buf(sbuf).await {
                    Ok(0) => return Err(Side::Server(ProtocolError::Truncated)),
                    Ok(_) => continue,
                    Err(e) => return Err(Side::Server(e.into())),
                }
            };
            let total = HEADER_LEN + len;
            let first = (len > 0).then(|| sbuf[HEADER_LEN]);
            let role = response.role(first, len);
            let scanned = response.scan(&sbuf[..total]).map_err(Side::Server)?;
            debug_assert_eq!(scanned, total);
            let payload = &sbuf[HEADER_LEN..total];
            let mut pass = true;
            match role {
                Role::ColumnCount => {
                    current = fixed
                        .clone()
                        .or_else(|| queue.front().cloned())
                        .or_else(|| beyond.clone());
                    active = None;
                    columns.clear();
                }
                Role::ColumnDef { last } if current.is_some() => {
                    columns
                        .push(mask::decode_column(payload).ok_or(malformed("column definition"))?);
                    held.push((seq, payload.to_vec()));
                    pass = false;
                    if last {
                        active = current.as_ref().and_then(|m| activate(m, &columns));
                        let mut sent = Vec::with_capacity(held.len());
                        for (i, (seq, p)) in held.drain(..).enumerate() {
                            let as_text = active
                                .as_ref()
                                .and_then(|a| a.cells[i].as_ref())
                                .is_some_and(|m| m.as_text(&columns[i]));
                            let p = if as_text {
                                mask::text_column(&p, &columns[i])
                                    .ok_or(malformed("column definition"))?
                            } else {
                                p
                            };
                            sent.extend(mask::decode_column(&p));
                            packet::encode(seq, &p, &mut out);
                        }
                        // The sample decodes rows by the columns the client
                        // was told (a masked date sent as text is text).
                        if let Some(tap) = response.tap_mut() {
                            tap.told(sent);
                        }
                        if let Some(id) = statement {
                            match &active {
                                Some(a) => self.masks.cursors.insert(id, a.clone()),
                                None => self.masks.cursors.remove(&id),
                            };
                        }
                    }
                }
                Role::Row if active.is_none() => {
                    // Unmasked rows of a masking session: as they pass.
                    if let Some(tap) = response.tap_mut() {
                        if tap.wants(len) {
                            tap.row(payload);
                        } else {
                            tap.skipped();
                        }
                    }
                }
                Role::Row | Role::Continuation if active.is_some() => {
                    let a = active.as_ref().expect("checked");
                    if len > MAX_MASKED_ROW || role == Role::Continuation {
                        return Err(Side::Server(ProtocolError::Unexpected(
                            "a row of 16 MiB or more in a masked result",
                        )));
                    }
                    // Masked where it lies when every masked value keeps
                    // its length (the row then passes as it is), else
                    // rewritten.
                    let in_place = mask::mask_row_in_place(
                        &mut sbuf[HEADER_LEN..total],
                        a,
                        binary,
                        &mut spans,
                    );
                    let out_at = out.len();
                    if !in_place {
                        // Rewritten straight into the output, after a
                        // header written once its length is known.
                        let payload = &sbuf[HEADER_LEN..total];
                        let at = out.len();
                        out.extend_from_slice(&[0; HEADER_LEN]);
                        let masked = if binary {
                            mask::mask_binary_row(payload, a, &mut out)
                        } else {
                            mask::mask_text_row(payload, a, &mut out)
                        };
                        masked.ok_or(malformed("row"))?;
                        let row_len = out.len() - at - HEADER_LEN;
                        if row_len > MAX_MASKED_ROW {
                            return Err(Side::Server(ProtocolError::Unexpected(
                                "a masked row of 16 MiB or more",
                            )));
                        }
                        out[at..at + 3].copy_from_slice(&(row_len as u32).to_le_bytes()[..3]);
                        out[at + 3] = seq;
                        pass = false;
                    }
                    if let Some(tap) = response.tap_mut() {
                        // The row as it leaves for the client: masked.
                        let seen = if in_place {
                            &sbuf[HEADER_LEN..total]
                        } else {
                            &out[out_at + HEADER_LEN..]
                        };
                        if tap.wants(seen.len()) {
                            tap.row(seen);
                        } else {
                            tap.skipped();
                        }
                    }
                }
                Role::EndOfRows => {
                    active = None;
                    if fixed.is_none() && !current.as_ref().is_some_and(|m| m.procedure()) {
                        queue.pop_front();
                    }
                }
                Role::Ok if fixed.is_none() => {
                    queue.pop_front();
                }
                Role::Other if first == Some(0xff) && len < MAX_FRAGMENT => {
                    let scrub = fixed
                        .as_ref()
                        .or(queue.front())
                        .map_or(mask::Scrub::Keep, |m| m.scrub());
                    if scrub != mask::Scrub::Keep {
                        if let Some(p) = mask::scrub_err(payload, scrub) {
                            packet::encode(seq, &p, &mut out);
                            pass = false;
                        }
                    }
                }
                Role::Other if prepare && first == Some(0x00) && len >= 5 => {
                    let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
                    self.masks.statements.insert(id, fixed.clone());
                    self.masks.cursors.remove(&id);
                    self.masks.last_prepared = Some(id);
                }
                _ => {}
            }
            if pass {
                out.extend_from_slice(&sbuf[..total]);
            }
            sbuf.advance(total);
            if out.len() >= OUT_CHUNK {
                self.flush_out(&mut out).await?;
            }
            if budget.take().is_some() && sbuf.capacity() > 4 * READ_CHUNK {
                // The held packet is gone: so is its memory, before its
                // share of the budget goes back.
                let mut small = BytesMut::with_capacity(READ_CHUNK.max(sbuf.len()));
                small.extend_from_slice(sbuf);
                *sbuf = small;
            }
        }
        self.flush_out(&mut out).await
    }

    pub(super) async fn flush_out(&mut self, out: &mut Vec<u8>) -> Result<(), Side> {
        if !out.is_empty() {
            write(&mut self.client.io, out)
                .await
                .map_err(|e| Side::Client(e.into()))?;
            out.clear();
        }
        Ok(())
    }
}

/// The masks of a result set with these columns, if any is masked.
pub(super) fn activate(mask: &Arc<dyn ResultMask>, columns: &[Column]) -> Option<ActiveMask> {
    let cells = mask.columns(columns)?;
    cells.iter().any(Option::is_some).then(|| ActiveMask {
        columns: columns.to_vec(),
        cells,
    })
}
