//! The first rows of each result as the client received them, for the
//! recording (`sqlgate_net::outcome::Sampler` keeps them within the
//! sink's limits). Column definitions name the sample's columns; rows
//! are decoded from the text or binary protocol into shown values.
//!
//! It must never see a row before masking: the unmasked relay feeds it
//! rows as they pass (nothing there is masked), the masked relay feeds it
//! each row as rewritten.

use crate::mask::{self, column_type, Column};
use sqlgate_net::outcome::{shown, ResultSample, RowValues, SampleLimits, Sampler};

/// Column flag: the integer is unsigned.
const UNSIGNED_FLAG: u16 = 0x20;

/// One response's sampling.
#[derive(Debug)]
pub struct Tap {
    sampler: Sampler,
    columns: Vec<Column>,
    /// Rows are binary-protocol rows (COM_STMT_EXECUTE, COM_STMT_FETCH).
    binary: bool,
    /// The response tracker feeds rows itself (nothing is masked).
    pub auto_rows: bool,
}

impl Tap {
    /// A tap within `limits` (`None`: no samples kept).
    pub fn new(limits: SampleLimits, binary: bool, auto_rows: bool) -> Option<Tap> {
        Some(Tap {
            sampler: Sampler::new(limits)?,
            columns: Vec::new(),
            binary,
            auto_rows,
        })
    }

    /// A result set starts.
    pub fn begin(&mut self) {
        self.columns.clear();
        self.sampler.begin(std::sync::Arc::default());
    }

    /// One of its column definitions.
    pub fn column(&mut self, payload: &[u8]) {
        let column = mask::decode_column(payload);
        let name = column
            .as_ref()
            .map_or_else(|| "?".to_owned(), |c| shown(&c.name));
        if let Some(c) = column {
            self.columns.push(c);
        }
        self.sampler.begin_column(name);
    }

    /// The result's columns as the client was told them (masked columns
    /// may be reported as text): rows are decoded by these.
    pub fn told(&mut self, columns: Vec<Column>) {
        if columns.len() == self.columns.len() {
            self.columns = columns;
        }
    }

    /// Whether a row of `len` bytes is kept.
    pub fn wants(&self, len: usize) -> bool {
        self.sampler.wants(len)
    }

    /// A row as the client received it.
    pub fn row(&mut self, payload: &[u8]) {
        let (binary, columns) = (self.binary, &self.columns);
        self.sampler.row(payload.len(), None, |values| {
            if binary {
                for v in binary_values(payload, columns)? {
                    match v {
                        Some(v) => values.text(&v),
                        None => values.null(),
                    }
                }
                Some(())
            } else {
                text_values(payload, columns.len(), values)
            }
        });
    }

    /// A row passed without being kept.
    pub fn skipped(&mut self) {
        self.sampler.skipped();
    }

    /// The result set ended: its sample.
    pub fn finish(&mut self) -> Option<ResultSample> {
        self.sampler.finish()
    }

    /// The result set ended without a sample to keep (an error).
    pub fn discard(&mut self) {
        self.sampler.finished();
    }
}

/// The types a COM_STMT_EXECUTE bound its parameters with (type and
/// unsigned flag), kept per statement: later executions may omit them.
pub type ParamTypes = Vec<(u8, bool)>;

/// A COM_STMT_EXECUTE payload's parameter values (after the command
/// byte), for a statement of `count` parameters last bound with `types`:
/// the values as a recording shows them and the types now bound. `None`
/// when it does not decode (long data sent apart shows as absent).
pub fn parameter_values(
    payload: &[u8],
    count: usize,
    types: Option<&ParamTypes>,
) -> Option<(Vec<Option<String>>, Option<ParamTypes>)> {
    if count == 0 {
        return Some((Vec::new(), None));
    }
    // statement id (4), flags (1), iteration count (4).
    let mut p = payload.get(9..)?;
    let bitmap = p.get(..count.div_ceil(8))?;
    p = &p[bitmap.len()..];
    let bound = *p.first()?;
    p = &p[1..];
    let fresh = if bound == 1 {
        let raw = p.get(..2 * count)?;
        p = &p[2 * count..];
        Some(
            raw.chunks(2)
                .map(|t| (t[0], t[1] & 0x80 != 0))
                .collect::<ParamTypes>(),
        )
    } else {
        None
    };
    let types = fresh.as_ref().or(types)?;
    let mut values = Vec::with_capacity(count);
    for (i, &(t, unsigned)) in types.iter().enumerate().take(count) {
        if bitmap[i / 8] & (1 << (i % 8)) != 0 {
            values.push(None);
            continue;
        }
        let column = Column {
            column_type: t,
            flags: if unsigned { UNSIGNED_FLAG } else { 0 },
            ..Column::default()
        };
        let value = match mask::binary_size(t, p) {
            Some(size) => {
                let v = p.get(..size)?;
                p = &p[size..];
                binary_value(&column, v).unwrap_or_default()
            }
            None => shown(mask::lenenc_str(&mut p)?),
        };
        values.push(Some(value));
    }
    // Values sent apart (COM_STMT_SEND_LONG_DATA) are not in the packet:
    // a decode that does not end where the packet does is not trusted.
    p.is_empty().then_some((values, fresh))
}

/// A text-protocol row's values, written to `values` (`None`: it does
/// not decode into `columns` values).
fn text_values(payload: &[u8], columns: usize, values: &mut RowValues<'_>) -> Option<()> {
    let mut p = payload;
    while !p.is_empty() {
        if p[0] == 0xfb {
            values.null();
            p = &p[1..];
        } else {
            values.shown(mask::lenenc_str(&mut p)?);
        }
    }
    (values.len() == columns).then_some(())
}

/// A binary-protocol row's values, decoded by their columns' types.
fn binary_values(payload: &[u8], columns: &[Column]) -> Option<Vec<Option<String>>> {
    let n = columns.len();
    let bitmap_len = (n + 7 + 2) / 8;
    let header = payload.get(..1 + bitmap_len)?;
    if header[0] != 0x00 || n == 0 {
        return None;
    }
    let bitmap = &header[1..];
    let mut p = &payload[1 + bitmap_len..];
    let mut values = Vec::with_capacity(n);
    for (i, c) in columns.iter().enumerate() {
        if bitmap[(i + 2) / 8] & (1 << ((i + 2) % 8)) != 0 {
            values.push(None);
            continue;
        }
        let value = match mask::binary_size(c.column_type, p) {
            Some(size) => {
                let v = p.get(..size)?;
                p = &p[size..];
                binary_value(c, v)?
            }
            None => shown(mask::lenenc_str(&mut p)?),
        };
        values.push(Some(value));
    }
    p.is_empty().then_some(values)
}

/// One fixed-size binary value as text.
fn binary_value(c: &Column, v: &[u8]) -> Option<String> {
    use column_type::*;
    let unsigned = c.flags & UNSIGNED_FLAG != 0;
    let le = |n: usize| -> Option<u64> {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(v.get(..n)?);
        Some(u64::from_le_bytes(b))
    };
    Some(match c.column_type {
        TINY if unsigned => le(1)?.to_string(),
        TINY => (le(1)? as u8 as i8).to_string(),
        SHORT | YEAR if unsigned || c.column_type == YEAR => le(2)?.to_string(),
        SHORT => (le(2)? as u16 as i16).to_string(),
        LONG | INT24 if unsigned => le(4)?.to_string(),
        LONG | INT24 => (le(4)? as u32 as i32).to_string(),
        LONGLONG if unsigned => le(8)?.to_string(),
        LONGLONG => (le(8)? as i64).to_string(),
        FLOAT => f32::from_bits(le(4)? as u32).to_string(),
        DOUBLE => f64::from_bits(le(8)?).to_string(),
        DATE | DATETIME | TIMESTAMP | NEWDATE => datetime(v)?,
        TIME => time(v)?,
        NULL => return None,
        _ => shown(v),
    })
}

/// `YYYY-MM-DD[ hh:mm:ss[.ffffff]]` from a binary date (length first).
fn datetime(v: &[u8]) -> Option<String> {
    let b = v.get(1..)?;
    let get = |i: usize| b.get(i).copied().unwrap_or(0);
    let year = u16::from_le_bytes([get(0), get(1)]);
    let mut s = format!("{year:04}-{:02}-{:02}", get(2), get(3));
    if b.len() >= 7 {
        s.push_str(&format!(" {:02}:{:02}:{:02}", get(4), get(5), get(6)));
    }
    if b.len() >= 11 {
        let us = u32::from_le_bytes([get(7), get(8), get(9), get(10)]);
        s.push_str(&format!(".{us:06}"));
    }
    Some(s)
}

/// `[-][d ]hh:mm:ss[.ffffff]` from a binary time (length first).
fn time(v: &[u8]) -> Option<String> {
    let b = v.get(1..)?;
    if b.is_empty() {
        return Some("00:00:00".to_owned());
    }
    let get = |i: usize| b.get(i).copied().unwrap_or(0);
    let days = u32::from_le_bytes([get(1), get(2), get(3), get(4)]);
    let hours = u64::from(days) * 24 + u64::from(get(5));
    let mut s = format!(
        "{}{hours:02}:{:02}:{:02}",
        if get(0) == 1 { "-" } else { "" },
        get(6),
        get(7)
    );
    if b.len() >= 12 {
        let us = u32::from_le_bytes([get(8), get(9), get(10), get(11)]);
        s.push_str(&format!(".{us:06}"));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(t: u8, flags: u16) -> Column {
        Column {
            schema: Vec::new(),
            table: Vec::new(),
            org_table: Vec::new(),
            name: b"c".to_vec(),
            org_name: Vec::new(),
            charset: mask::UTF8MB4,
            length: 0,
            column_type: t,
            flags,
            decimals: 0,
        }
    }

    /// A text row as a sample keeps it (`None`: not kept).
    fn text_row(payload: &[u8], columns: usize) -> Option<Vec<Option<String>>> {
        let limits = SampleLimits {
            rows: 1,
            bytes: 100,
        };
        let mut s = Sampler::new(limits).unwrap();
        s.row(payload.len(), None, |v| text_values(payload, columns, v));
        let sample = s.finish()?;
        let row = sample.rows().next()?;
        Some(row.values().map(|v| v.map(str::to_owned)).collect())
    }

    #[test]
    fn text_rows_decode_with_nulls() {
        assert_eq!(
            text_row(b"\x017\xfb\x03abc", 3),
            Some(vec![Some("7".into()), None, Some("abc".into())])
        );
        assert_eq!(text_row(b"\x017", 2), None);
    }

    #[test]
    fn execute_parameters_decode_with_their_types_or_the_last_ones() {
        // id, flags, iterations; bitmap (2 params: the second NULL);
        // bound; types LONG and VAR_STRING; the value 42.
        let payload = [
            &[1u8, 0, 0, 0, 0, 1, 0, 0, 0][..],
            &[0b10],
            &[1],
            &[column_type::LONG, 0, column_type::VAR_STRING, 0],
            &42i32.to_le_bytes(),
        ]
        .concat();
        let (values, types) = parameter_values(&payload, 2, None).unwrap();
        assert_eq!(values, vec![Some("42".to_owned()), None]);
        let types = types.unwrap();
        // Again without types: the last ones apply.
        let again = [
            &[1u8, 0, 0, 0, 0, 1, 0, 0, 0][..],
            &[0],
            &[0],
            &7i32.to_le_bytes(),
            b"\x02hi",
        ]
        .concat();
        let (values, fresh) = parameter_values(&again, 2, Some(&types)).unwrap();
        assert_eq!(values, vec![Some("7".to_owned()), Some("hi".to_owned())]);
        assert!(fresh.is_none());
        assert!(parameter_values(&again, 2, None).is_none());
    }

    #[test]
    fn binary_rows_decode_by_type() {
        let cols = [
            column(column_type::LONG, 0),
            column(column_type::VAR_STRING, 0),
            column(column_type::TINY, UNSIGNED_FLAG),
            column(column_type::DATETIME, 0),
        ];
        // 4 columns + 2 → one bitmap byte; the string is NULL (bit 3).
        let row = [
            &[0u8, 1 << 3][..],
            &(-5i32).to_le_bytes(),
            &[250u8],
            &[7, 0xea, 0x07, 12, 5, 13, 14, 15],
        ]
        .concat();
        assert_eq!(
            binary_values(&row, &cols),
            Some(vec![
                Some("-5".into()),
                None,
                Some("250".into()),
                Some("2026-12-05 13:14:15".into())
            ])
        );
        assert_eq!(binary_values(&row[..row.len() - 1], &cols), None);
    }
}
