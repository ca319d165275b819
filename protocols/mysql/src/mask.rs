//! Result masking in wire terms. The engine decides, from a result set's
//! column definitions (schema, org_table and org_name say which table
//! column a plain reference is; type and charset say how values look),
//! which columns are masked and how; the relay rewrites those cells of
//! each text or binary row as it passes and the column definitions the
//! client is told. Nothing here knows rules.

use std::fmt::Debug;
use std::sync::Arc;

use crate::messages::{lenenc_int, put_lenenc_int};
pub use sqlgate_net::scrub::Scrub;

/// Column types (`enum_field_types`), by their names in the server's
/// sources.
#[allow(missing_docs)]
pub mod column_type {
    pub const DECIMAL: u8 = 0x00;
    pub const TINY: u8 = 0x01;
    pub const SHORT: u8 = 0x02;
    pub const LONG: u8 = 0x03;
    pub const FLOAT: u8 = 0x04;
    pub const DOUBLE: u8 = 0x05;
    pub const NULL: u8 = 0x06;
    pub const TIMESTAMP: u8 = 0x07;
    pub const LONGLONG: u8 = 0x08;
    pub const INT24: u8 = 0x09;
    pub const DATE: u8 = 0x0a;
    pub const TIME: u8 = 0x0b;
    pub const DATETIME: u8 = 0x0c;
    pub const YEAR: u8 = 0x0d;
    pub const NEWDATE: u8 = 0x0e;
    pub const VARCHAR: u8 = 0x0f;
    pub const BIT: u8 = 0x10;
    pub const NEWDECIMAL: u8 = 0xf6;
    pub const VAR_STRING: u8 = 0xfd;
}

/// utf8mb4_general_ci: the charset of columns reported as text.
pub const UTF8MB4: u16 = 45;
/// The `binary` pseudo-charset.
pub const BINARY_CHARSET: u16 = 63;
const BINARY_FLAG: u16 = 0x80;

/// One column definition (Protocol::ColumnDefinition41).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Column {
    /// The schema of the table.
    pub schema: Vec<u8>,
    /// The table's name as the statement wrote it (alias).
    pub table: Vec<u8>,
    /// The table's real name (empty: computed).
    pub org_table: Vec<u8>,
    /// The column's name as the client sees it.
    pub name: Vec<u8>,
    /// The column's real name.
    pub org_name: Vec<u8>,
    /// Character set (63: binary).
    pub charset: u16,
    /// Display length.
    pub length: u32,
    /// Type.
    pub column_type: u8,
    /// Flags.
    pub flags: u16,
    /// Decimals.
    pub decimals: u8,
}

pub(crate) fn lenenc_str<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (n, used) = lenenc_int(buf)?;
    let end = used.checked_add(usize::try_from(n).ok()?)?;
    let s = buf.get(used..end)?;
    *buf = &buf[end..];
    Some(s)
}

/// Decodes a column definition payload.
pub fn decode_column(payload: &[u8]) -> Option<Column> {
    let mut p = payload;
    let _catalog = lenenc_str(&mut p)?;
    let schema = lenenc_str(&mut p)?.to_vec();
    let table = lenenc_str(&mut p)?.to_vec();
    let org_table = lenenc_str(&mut p)?.to_vec();
    let name = lenenc_str(&mut p)?.to_vec();
    let org_name = lenenc_str(&mut p)?.to_vec();
    let (_fixed, used) = lenenc_int(p)?;
    let f = p.get(used..used + 10)?;
    Some(Column {
        schema,
        table,
        org_table,
        name,
        org_name,
        charset: u16::from_le_bytes([f[0], f[1]]),
        length: u32::from_le_bytes([f[2], f[3], f[4], f[5]]),
        column_type: f[6],
        flags: u16::from_le_bytes([f[7], f[8]]),
        decimals: f[9],
    })
}

/// The payload of a column definition (catalog `def`, no default
/// values): what [`decode_column`] reads.
pub fn encode_column(c: &Column) -> Vec<u8> {
    let mut p = Vec::new();
    for s in [
        &b"def"[..],
        &c.schema,
        &c.table,
        &c.org_table,
        &c.name,
        &c.org_name,
    ] {
        put_lenenc_int(s.len() as u64, &mut p);
        p.extend_from_slice(s);
    }
    p.push(0x0c);
    p.extend_from_slice(&c.charset.to_le_bytes());
    p.extend_from_slice(&c.length.to_le_bytes());
    p.push(c.column_type);
    p.extend_from_slice(&c.flags.to_le_bytes());
    p.push(c.decimals);
    p.extend_from_slice(&[0, 0]);
    p
}

/// The payload of a column definition reported as text (type, charset,
/// length and flags changed; names and everything else kept).
pub fn text_column(payload: &[u8], column: &Column) -> Option<Vec<u8>> {
    let mut p = payload;
    for _ in 0..6 {
        lenenc_str(&mut p)?;
    }
    let fixed_at = payload.len() - p.len();
    let (_n, used) = lenenc_int(p)?;
    let at = fixed_at + used;
    payload.get(at..at + 10)?;
    let mut out = payload.to_vec();
    out[at..at + 2].copy_from_slice(&UTF8MB4.to_le_bytes());
    let length = column.length.max(256 * 4);
    out[at + 2..at + 6].copy_from_slice(&length.to_le_bytes());
    out[at + 6] = column_type::VAR_STRING;
    let flags = column.flags & !BINARY_FLAG & !0x20 & !0x40; // binary, unsigned, zerofill
    out[at + 7..at + 9].copy_from_slice(&flags.to_le_bytes());
    out[at + 9] = 0x27; // decimals: "not fixed"
    Some(out)
}

/// How one statement's result sets are masked, given their columns.
pub trait ResultMask: Send + Sync + Debug {
    /// Each column's mask (`None`: clear), or `None` when nothing in this
    /// result set is masked.
    fn columns(&self, columns: &[Column]) -> Option<Vec<Option<Arc<dyn CellMask>>>>;

    /// A procedure call: several result sets belong to this one
    /// statement, ended by an OK.
    fn procedure(&self) -> bool;

    /// How much of the statement's error messages is hidden (they may
    /// quote masked values).
    fn scrub(&self) -> Scrub;
}

/// An ERR payload with its message scrubbed; `None` when it is not an
/// ERR in the 4.1 format.
pub fn scrub_err(payload: &[u8], scrub: Scrub) -> Option<Vec<u8>> {
    if payload.first() != Some(&0xff) || payload.get(3) != Some(&b'#') || payload.len() < 9 {
        return None;
    }
    let mut out = payload[..9].to_vec();
    out.extend_from_slice(&sqlgate_net::scrub::scrub_message(&payload[9..], scrub));
    Some(out)
}

/// How the values of one column are masked.
pub trait CellMask: Send + Sync + Debug {
    /// Whether masked values are reported as text rather than the
    /// column's own type.
    fn as_text(&self, column: &Column) -> bool;

    /// Writes the masked text of one value given in text form; `false`
    /// for NULL.
    fn text(&self, column: &Column, value: &[u8], out: &mut Vec<u8>) -> bool;

    /// Writes the masked binary-protocol value of one value given in
    /// binary form (for string-like types: the bytes without their length
    /// prefix); the output is in the same form, or a plain string when
    /// [`CellMask::as_text`]. `false` for NULL.
    fn binary(&self, column: &Column, value: &[u8], out: &mut Vec<u8>) -> bool;

    /// Whether [`CellMask::apply_in_place`] can mask this value (the
    /// bytes of a string-like value, the same in both protocols): its
    /// masked form has the same length and the column's type.
    fn fits_in_place(&self, _column: &Column, _value: &[u8]) -> bool {
        false
    }

    /// Masks a value where it lies (only after [`CellMask::fits_in_place`]
    /// said yes): what [`CellMask::text`] would write, written over it.
    fn apply_in_place(&self, _column: &Column, _value: &mut [u8]) {}
}

/// The masks of one result set in progress.
#[derive(Debug, Clone)]
pub struct ActiveMask {
    /// The columns as the server described them.
    pub columns: Vec<Column>,
    /// Each column's mask.
    pub cells: Vec<Option<Arc<dyn CellMask>>>,
}

/// Rewrites a text-protocol row (appended to `out`).
pub fn mask_text_row(payload: &[u8], active: &ActiveMask, out: &mut Vec<u8>) -> Option<()> {
    let start = out.len();
    let mut p = payload;
    for (i, mask) in active.cells.iter().enumerate() {
        if p.first() == Some(&0xfb) {
            p = &p[1..];
            out.push(0xfb);
            continue;
        }
        let before = p;
        let Some(value) = lenenc_str(&mut p) else {
            out.truncate(start);
            return None;
        };
        match mask {
            None => out.extend_from_slice(&before[..before.len() - p.len()]),
            Some(m) => {
                let at = out.len();
                if m.text(&active.columns[i], value, out) {
                    prefix_length(out, at);
                } else {
                    out.truncate(at);
                    out.push(0xfb);
                }
            }
        }
    }
    if !p.is_empty() {
        out.truncate(start);
        return None;
    }
    Some(())
}

/// Puts the length-encoded length of the value written from `at` to the
/// end of `out` in front of it. Masked values are written straight into
/// the row, without a buffer of their own: they are short, and moving one
/// by its prefix's few bytes costs less than an allocation per cell.
fn prefix_length(out: &mut Vec<u8>, at: usize) {
    let len = out.len() - at;
    if len <= 250 {
        out.insert(at, len as u8);
    } else {
        let mut prefix = Vec::with_capacity(9);
        put_lenenc_int(len as u64, &mut prefix);
        out.splice(at..at, prefix);
    }
}

/// Masks a row where it lies when every masked value in it keeps its
/// length ([`CellMask::fits_in_place`]); `false`, with the row untouched,
/// when one does not (or the row is malformed: the rewrite will say so).
/// Masked rows of `keep_*` rules over ASCII values take this path, which
/// copies nothing. `spans` is scratch space kept between rows.
pub fn mask_row_in_place(
    payload: &mut [u8],
    active: &ActiveMask,
    binary: bool,
    spans: &mut Vec<(usize, usize, usize)>,
) -> bool {
    spans.clear();
    if cell_spans(payload, active, binary, spans).is_none() {
        return false;
    }
    let fits = spans.iter().all(|&(i, start, end)| {
        active.cells[i]
            .as_ref()
            .is_some_and(|m| m.fits_in_place(&active.columns[i], &payload[start..end]))
    });
    if fits {
        for &(i, start, end) in spans.iter() {
            if let Some(m) = &active.cells[i] {
                m.apply_in_place(&active.columns[i], &mut payload[start..end]);
            }
        }
    }
    fits
}

/// The `(column, start, end)` of every masked non-NULL value of a row;
/// `None` when the row does not parse whole.
fn cell_spans(
    payload: &[u8],
    active: &ActiveMask,
    binary: bool,
    spans: &mut Vec<(usize, usize, usize)>,
) -> Option<()> {
    let n = active.cells.len();
    let (bitmap, mut at) = if binary {
        let bitmap_len = (n + 7 + 2) / 8;
        let header = payload.get(..1 + bitmap_len)?;
        if header[0] != 0x00 {
            return None;
        }
        (Some(&header[1..]), 1 + bitmap_len)
    } else {
        (None, 0)
    };
    for (i, mask) in active.cells.iter().enumerate() {
        let rest = payload.get(at..)?;
        let (start, end) = match bitmap {
            Some(bm) if bm[(i + 2) / 8] & (1 << ((i + 2) % 8)) != 0 => continue,
            Some(_) => match binary_size(active.columns[i].column_type, rest) {
                Some(size) => (at, at.checked_add(size)?),
                None => lenenc_span(rest, at)?,
            },
            None if rest.first() == Some(&0xfb) => {
                at += 1;
                continue;
            }
            None => lenenc_span(rest, at)?,
        };
        if end > payload.len() {
            return None;
        }
        if mask.is_some() {
            spans.push((i, start, end));
        }
        at = end;
    }
    (at == payload.len()).then_some(())
}

/// Where the value of a length-encoded string at `at` (`rest` onwards)
/// starts and ends.
fn lenenc_span(rest: &[u8], at: usize) -> Option<(usize, usize)> {
    let (len, used) = lenenc_int(rest)?;
    let start = at + used;
    Some((start, start.checked_add(usize::try_from(len).ok()?)?))
}

/// The length of a binary-protocol value of a type with a fixed or
/// one-byte-prefixed size; `None` for length-encoded (string-like) types.
pub(crate) fn binary_size(column_type: u8, rest: &[u8]) -> Option<usize> {
    use column_type::*;
    Some(match column_type {
        TINY => 1,
        SHORT | YEAR => 2,
        LONG | INT24 | FLOAT => 4,
        LONGLONG | DOUBLE => 8,
        DATE | DATETIME | TIMESTAMP | TIME | NEWDATE => 1 + *rest.first()? as usize,
        NULL => 0,
        _ => return None,
    })
}

/// Rewrites a binary-protocol row (appended to `out`).
pub fn mask_binary_row(payload: &[u8], active: &ActiveMask, out: &mut Vec<u8>) -> Option<()> {
    let n = active.cells.len();
    let bitmap_len = (n + 7 + 2) / 8;
    let header = payload.get(..1 + bitmap_len)?;
    if header[0] != 0x00 {
        return None;
    }
    let start = out.len();
    // Header and NULL bitmap first; values masked to NULL set their bit.
    out.extend_from_slice(header);
    let mut p = &payload[1 + bitmap_len..];
    for (i, mask) in active.cells.iter().enumerate() {
        let (byte, bit) = (start + 1 + (i + 2) / 8, 1u8 << ((i + 2) % 8));
        if out[byte] & bit != 0 {
            continue;
        }
        let col = &active.columns[i];
        let before = p;
        let value = match binary_size(col.column_type, p) {
            Some(size) => p.get(..size).inspect(|_| p = &p[size..]),
            None => lenenc_str(&mut p),
        };
        let Some(value) = value else {
            out.truncate(start);
            return None;
        };
        match mask {
            None => out.extend_from_slice(&before[..before.len() - p.len()]),
            Some(m) => {
                let at = out.len();
                let as_text = m.as_text(col);
                if !m.binary(col, value, out) {
                    out.truncate(at);
                    out[byte] |= bit;
                } else if as_text || binary_size(col.column_type, &out[at..]).is_none() {
                    prefix_length(out, at);
                }
            }
        }
    }
    if !p.is_empty() {
        out.truncate(start);
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Star;
    impl CellMask for Star {
        fn as_text(&self, c: &Column) -> bool {
            c.column_type != column_type::VAR_STRING
        }
        fn text(&self, _: &Column, v: &[u8], out: &mut Vec<u8>) -> bool {
            out.extend(std::iter::repeat_n(b'*', v.len()));
            true
        }
        fn binary(&self, c: &Column, v: &[u8], out: &mut Vec<u8>) -> bool {
            if c.column_type == column_type::LONG {
                return false;
            }
            self.text(c, v, out)
        }
    }

    fn column(t: u8) -> Column {
        Column {
            schema: b"s".to_vec(),
            table: b"t".to_vec(),
            org_table: b"t".to_vec(),
            name: b"c".to_vec(),
            org_name: b"c".to_vec(),
            charset: UTF8MB4,
            length: 10,
            column_type: t,
            flags: 0,
            decimals: 0,
        }
    }

    #[test]
    fn column_definitions_decode_and_turn_text() {
        let c = column(column_type::LONG);
        let payload = encode_column(&c);
        assert_eq!(decode_column(&payload).unwrap(), c);
        let t = decode_column(&text_column(&payload, &c).unwrap()).unwrap();
        assert_eq!(
            (t.column_type, t.charset, t.name.as_slice()),
            (column_type::VAR_STRING, UTF8MB4, &b"c"[..])
        );
        assert!(decode_column(&payload[..payload.len() - 5]).is_none());
    }

    #[test]
    fn rows_are_masked_cell_by_cell() {
        let active = ActiveMask {
            columns: vec![
                column(column_type::LONG),
                column(column_type::VAR_STRING),
                column(column_type::LONG),
            ],
            cells: vec![None, Some(Arc::new(Star)), Some(Arc::new(Star))],
        };
        let mut out = Vec::new();
        mask_text_row(b"\x017\x03abc\xfb", &active, &mut out).unwrap();
        assert_eq!(out, b"\x017\x03***\xfb");
        assert!(mask_text_row(b"\x017\x05abc", &active, &mut Vec::new()).is_none());
        // binary: header, bitmap (3 columns + 2 → 1 byte), values.
        let row = [
            &[0u8, 0][..],
            &7i32.to_le_bytes(),
            b"\x03abc",
            &9i32.to_le_bytes(),
        ]
        .concat();
        out.clear();
        mask_binary_row(&row, &active, &mut out).unwrap();
        // The third column (bit 4) became NULL; the string was starred.
        assert_eq!(
            out,
            [&[0u8, 1 << 4][..], &7i32.to_le_bytes(), b"\x03***"].concat()
        );
        assert!(mask_binary_row(&row[..row.len() - 1], &active, &mut Vec::new()).is_none());
    }
}
