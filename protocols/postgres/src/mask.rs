//! Result masking in wire terms. The engine decides, from a result's
//! RowDescription (table OID, attribute number, type, format of each
//! column) and what it knows of the statement, which columns are masked
//! and how; the relay rewrites those cells of each DataRow as it passes
//! and the column types the client is told. Nothing here knows rules.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use crate::messages::cursor::Cursor;
pub use sqlgate_net::scrub::Scrub;

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Its name as the client sees it.
    pub name: Vec<u8>,
    /// The table it is a plain reference to (0: computed).
    pub table_oid: u32,
    /// Its attribute number in that table.
    pub column: i16,
    /// Its type.
    pub type_oid: u32,
    /// The type's length (-1: variable).
    pub type_len: i16,
    /// The type modifier.
    pub type_mod: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// The type OID of `text`, which columns whose masked values no longer
/// fit their type are reported as.
pub const TEXT_OID: u32 = 25;

/// How one statement's results are masked, given their columns.
pub trait ResultMask: Send + Sync + Debug {
    /// Each column's mask (`None`: clear), or `None` when nothing in this
    /// result is masked.
    fn columns(&self, fields: &[Field]) -> Option<Vec<Option<Arc<dyn CellMask>>>>;

    /// How much of the errors and notices the statement causes is hidden
    /// (they may quote masked values).
    fn scrub(&self) -> Scrub;
}

/// How the values of one column are masked.
pub trait CellMask: Send + Sync + Debug {
    /// Whether the masked values are reported as `text` rather than the
    /// column's own type.
    fn as_text(&self, field: &Field) -> bool;

    /// Writes the masked form of one non-NULL value, in the field's
    /// format (and type, or text when [`CellMask::as_text`]), to `out`;
    /// `false` for SQL NULL.
    fn apply(&self, field: &Field, value: &[u8], out: &mut Vec<u8>) -> bool;

    /// Whether [`CellMask::apply_in_place`] can mask this value: its
    /// masked form has the same length (and is not NULL).
    fn fits_in_place(&self, _field: &Field, _value: &[u8]) -> bool {
        false
    }

    /// Masks a value where it lies (only after
    /// [`CellMask::fits_in_place`] said yes): what [`CellMask::apply`]
    /// would write, written over the value.
    fn apply_in_place(&self, _field: &Field, _value: &mut [u8]) {}
}

/// The masks of one result in progress.
#[derive(Debug, Clone)]
pub struct ActiveMask {
    /// The columns, with the formats their values come in.
    pub fields: Vec<Field>,
    /// Each column's mask.
    pub cells: Vec<Option<Arc<dyn CellMask>>>,
}

/// Decodes a RowDescription body.
pub fn decode_row_description(body: &[u8]) -> Option<Vec<Field>> {
    let mut c = Cursor::new(body);
    let n = c.i16()?;
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let name = c.cstr()?.to_vec();
        let table_oid = c.i32()? as u32;
        let column = c.i16()?;
        let type_oid = c.i32()? as u32;
        let type_len = c.i16()?;
        let type_mod = c.i32()?;
        let format = c.i16()?;
        out.push(Field {
            name,
            table_oid,
            column,
            type_oid,
            type_len,
            type_mod,
            format,
        });
    }
    c.is_empty().then_some(out)
}

/// Encodes a whole RowDescription message.
pub fn encode_row_description(fields: &[Field], out: &mut BytesMut) {
    let start = out.len();
    out.put_u8(b'T');
    out.put_u32(0);
    out.put_i16(fields.len() as i16);
    for f in fields {
        out.put_slice(&f.name);
        out.put_u8(0);
        out.put_u32(f.table_oid);
        out.put_i16(f.column);
        out.put_u32(f.type_oid);
        out.put_i16(f.type_len);
        out.put_i32(f.type_mod);
        out.put_i16(f.format);
    }
    let len = (out.len() - start - 1) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

/// The fields as the client must be told them: columns masked as text
/// get the text type.
pub fn client_fields(active: &ActiveMask) -> Vec<Field> {
    active
        .fields
        .iter()
        .zip(&active.cells)
        .map(|(f, m)| match m {
            Some(m) if m.as_text(f) => Field {
                type_oid: TEXT_OID,
                type_len: -1,
                type_mod: -1,
                ..f.clone()
            },
            _ => f.clone(),
        })
        .collect()
}

/// Rewrites a DataRow body's masked cells into a whole DataRow message
/// (`scratch` is a reusable buffer for one cell). `None`: the body is
/// malformed or its column count differs from the description (the
/// caller ends the session rather than guess).
pub fn mask_data_row(
    body: &[u8],
    active: &ActiveMask,
    out: &mut BytesMut,
    scratch: &mut Vec<u8>,
) -> Option<()> {
    let mut c = Cursor::new(body);
    let n = c.i16()?;
    if n as usize != active.cells.len() {
        return None;
    }
    let start = out.len();
    out.put_u8(b'D');
    out.put_u32(0);
    out.put_i16(n);
    // Clear cells are copied in runs, straight from the body.
    let mut run_start = 2;
    for (i, mask) in active.cells.iter().enumerate() {
        let at = body.len() - c.rest().len();
        let len = c.i32()?;
        let value = if len < 0 {
            None
        } else {
            Some(c.bytes(len as usize)?)
        };
        let (Some(m), Some(v)) = (mask, value) else {
            continue;
        };
        out.put_slice(&body[run_start..at]);
        run_start = body.len() - c.rest().len();
        scratch.clear();
        if m.apply(&active.fields[i], v, scratch) {
            out.put_i32(scratch.len() as i32);
            out.put_slice(scratch);
        } else {
            out.put_i32(-1);
        }
    }
    if !c.is_empty() {
        return None;
    }
    out.put_slice(&body[run_start..]);
    let len = (out.len() - start - 1) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    Some(())
}

/// Masks a DataRow body where it lies when every masked cell keeps its
/// length (the common case for `keep_*` on text): nothing is copied and
/// the row streams on. `false`: the body is untouched and the caller
/// rewrites the row with [`mask_data_row`].
pub fn mask_data_row_in_place(body: &mut [u8], active: &ActiveMask) -> bool {
    // Two passes: no cell is changed unless all can be.
    let mut cells = [(0usize, 0usize, 0usize); 8];
    let mut n_cells = 0;
    {
        let mut c = Cursor::new(body);
        if c.i16().map(|n| n as usize) != Some(active.cells.len()) {
            return false;
        }
        for (i, mask) in active.cells.iter().enumerate() {
            let at = body.len() - c.rest().len() + 4;
            let Some(len) = c.i32() else { return false };
            let value = if len < 0 {
                None
            } else {
                match c.bytes(len as usize) {
                    Some(v) => Some(v),
                    None => return false,
                }
            };
            if let (Some(m), Some(v)) = (mask, value) {
                if n_cells == cells.len() || !m.fits_in_place(&active.fields[i], v) {
                    return false;
                }
                cells[n_cells] = (i, at, v.len());
                n_cells += 1;
            }
        }
        if !c.is_empty() {
            return false;
        }
    }
    for &(i, at, len) in &cells[..n_cells] {
        if let Some(m) = &active.cells[i] {
            m.apply_in_place(&active.fields[i], &mut body[at..at + len]);
        }
    }
    true
}

/// A DataRow body's values as a sample shows them, written to `values`
/// (`None`: malformed).
pub fn data_row_values(
    body: &[u8],
    values: &mut sqlgate_net::outcome::RowValues<'_>,
) -> Option<()> {
    let mut c = Cursor::new(body);
    let n = c.i16()?;
    for _ in 0..n {
        let len = c.i32()?;
        if len < 0 {
            values.null();
        } else {
            values.shown(c.bytes(len as usize)?);
        }
    }
    c.is_empty().then_some(())
}

/// A column's name as a sample shows it.
pub fn shown_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// A Bind's statement name and parameter values (`None`: the body does
/// not decode), the values lent where they lie: text as text (lossily
/// when it is not UTF-8), other formats as [`sqlgate_net::sample::shown`]
/// shows bytes.
pub fn bind_parameters(body: &[u8]) -> Option<(&[u8], BindValues<'_>)> {
    let mut c = Cursor::new(body);
    c.cstr()?;
    let statement = c.cstr()?;
    let nf = usize::from(c.u16()?);
    // The format codes, read where they lie (big-endian i16s).
    let formats = c.bytes(2 * nf)?;
    let values = c.rest();
    let count = usize::from(c.u16()?);
    // Every value's length is checked once here: reading them again
    // cannot fail.
    for _ in 0..count {
        let len = c.i32()?;
        if len >= 0 {
            c.bytes(len as usize)?;
        }
    }
    Some((statement, BindValues { formats, values }))
}

/// A Bind's parameter values, read where they lie (see
/// [`bind_parameters`]).
#[derive(Debug, Clone, Copy)]
pub struct BindValues<'a> {
    /// The format codes (big-endian i16s).
    formats: &'a [u8],
    /// The values' count, then each value.
    values: &'a [u8],
}

impl BindValues<'_> {
    /// Value `i`'s format code.
    fn format(&self, i: usize) -> i16 {
        let at = match self.formats.len() / 2 {
            0 => return 0,
            1 => 0,
            n if i < n => 2 * i,
            _ => return 0,
        };
        i16::from_be_bytes([self.formats[at], self.formats[at + 1]])
    }
}

impl sqlgate_net::parameters::LentValues for BindValues<'_> {
    fn each(&self, f: &mut dyn FnMut(Option<&str>)) {
        let mut c = Cursor::new(self.values);
        let count = c.u16().map_or(0, usize::from);
        let mut binary = String::new();
        for i in 0..count {
            let Some(len) = c.i32() else { return };
            if len < 0 {
                f(None);
                continue;
            }
            let Some(v) = c.bytes(len as usize) else {
                return;
            };
            if self.format(i) == 0 {
                f(Some(&sqlgate_net::sample::lossy(v)));
            } else {
                // Binary: text types are their UTF-8; others show as hex.
                binary.clear();
                sqlgate_net::sample::shown_into(&mut binary, v);
                f(Some(&binary));
            }
        }
    }
}

/// The number of columns of a DataRow body.
pub fn data_row_columns(body: &[u8]) -> Option<usize> {
    Cursor::new(body).i16().map(|n| n.max(0) as usize)
}

/// What a Bind says that masking needs: the portal, its statement and
/// the result formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindInfo {
    /// The portal it creates.
    pub portal: Vec<u8>,
    /// The prepared statement it binds.
    pub statement: Vec<u8>,
    /// Result format codes (none: all text; one: all alike; else per
    /// column).
    pub formats: Vec<i16>,
}

/// Decodes what masking needs of a Bind body.
pub fn decode_bind(body: &[u8]) -> Option<BindInfo> {
    let mut c = Cursor::new(body);
    let portal = c.cstr()?.to_vec();
    let statement = c.cstr()?.to_vec();
    // Counts are unsigned 16-bit on the server (a signed reading made a
    // Bind of 32,768 parameters undecodable here but not there).
    let nf = c.u16()?;
    c.bytes(2 * usize::from(nf))?;
    let np = c.u16()?;
    for _ in 0..np {
        let len = c.i32()?;
        if len > 0 {
            c.bytes(len as usize)?;
        }
    }
    let nr = c.u16()?;
    let formats = (0..nr).map(|_| c.i16()).collect::<Option<Vec<_>>>()?;
    c.is_empty().then_some(BindInfo {
        portal,
        statement,
        formats,
    })
}

/// The format of result column `i` under a Bind's format codes.
pub fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

/// The kind (`S` or `P`) and name of a Describe or Close body.
pub fn decode_target(body: &[u8]) -> Option<(u8, &[u8])> {
    let mut c = Cursor::new(body);
    let kind = c.u8()?;
    let name = c.cstr()?;
    c.is_empty().then_some((kind, name))
}

/// The portal of an Execute body.
pub fn decode_execute(body: &[u8]) -> Option<&[u8]> {
    let mut c = Cursor::new(body);
    let portal = c.cstr()?;
    c.i32()?;
    c.is_empty().then_some(portal)
}

/// A Describe of a prepared statement, which the relay sends itself so
/// that Execute without a Describe still has its columns.
pub fn describe_statement(name: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(name.len() + 7);
    out.put_u8(b'D');
    out.put_u32((name.len() + 6) as u32);
    out.put_u8(b'S');
    out.put_slice(name);
    out.put_u8(0);
    out
}

/// Rewrites an ErrorResponse or NoticeResponse body of a statement that
/// reads masked values: fields that may quote values (detail, context,
/// hint, internal query, where) are dropped, the message is scrubbed, and
/// a detail says why.
pub fn scrub_notice(tag: u8, body: &[u8], scrub: Scrub, out: &mut BytesMut) -> Option<()> {
    let start = out.len();
    out.put_u8(tag);
    out.put_u32(0);
    let mut c = Cursor::new(body);
    loop {
        let code = c.u8()?;
        if code == 0 {
            break;
        }
        let value = c.cstr()?;
        match code {
            // Severity, SQLSTATE, position, file/line/routine.
            b'S' | b'V' | b'C' | b'P' | b'F' | b'L' | b'R' => {
                out.put_u8(code);
                out.put_slice(value);
                out.put_u8(0);
            }
            b'M' => {
                out.put_u8(b'M');
                out.put_slice(&sqlgate_net::scrub::scrub_message(value, scrub));
                out.put_u8(0);
            }
            // Everything else may quote values: dropped.
            _ => {}
        }
    }
    out.put_u8(b'D');
    out.put_slice(
        b"sqlgate: parts of this message are hidden because the statement reads masked columns",
    );
    out.put_u8(0);
    out.put_u8(0);
    let len = (out.len() - start - 1) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Star;
    impl CellMask for Star {
        fn as_text(&self, f: &Field) -> bool {
            f.type_oid != TEXT_OID
        }
        fn apply(&self, _: &Field, v: &[u8], out: &mut Vec<u8>) -> bool {
            out.extend(std::iter::repeat_n(b'*', v.len()));
            true
        }
    }

    fn field(name: &str, type_oid: u32) -> Field {
        Field {
            name: name.as_bytes().to_vec(),
            table_oid: 7,
            column: 1,
            type_oid,
            type_len: 4,
            type_mod: -1,
            format: 0,
        }
    }

    #[test]
    fn descriptions_round_trip_and_rows_are_masked_cell_by_cell() {
        let fields = vec![field("id", 23), field("ssn", 1043)];
        let mut msg = BytesMut::new();
        encode_row_description(&fields, &mut msg);
        assert_eq!(decode_row_description(&msg[5..]).unwrap(), fields);
        let active = ActiveMask {
            fields: fields.clone(),
            cells: vec![None, Some(Arc::new(Star))],
        };
        let told = client_fields(&active);
        assert_eq!(told[0], fields[0]);
        assert_eq!((told[1].type_oid, told[1].type_len), (TEXT_OID, -1));
        let row = [
            &2i16.to_be_bytes()[..],
            &1i32.to_be_bytes(),
            b"7",
            &3i32.to_be_bytes(),
            b"abc",
        ]
        .concat();
        let mut out = BytesMut::new();
        mask_data_row(&row, &active, &mut out, &mut Vec::new()).unwrap();
        assert_eq!(
            &out[5..],
            [
                &2i16.to_be_bytes()[..],
                &1i32.to_be_bytes(),
                b"7",
                &3i32.to_be_bytes(),
                b"***"
            ]
            .concat()
        );
        assert_eq!(
            u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize,
            out.len() - 1
        );
        let null = [
            &2i16.to_be_bytes()[..],
            &(-1i32).to_be_bytes(),
            &(-1i32).to_be_bytes(),
        ]
        .concat();
        out.clear();
        mask_data_row(&null, &active, &mut out, &mut Vec::new()).unwrap();
        assert_eq!(&out[5..], &null[..]);
        assert!(mask_data_row(&row[..row.len() - 1], &active, &mut out, &mut Vec::new()).is_none());
        assert!(mask_data_row(&1i16.to_be_bytes(), &active, &mut out, &mut Vec::new()).is_none());
    }

    #[test]
    fn bind_counts_are_unsigned_as_on_the_server() {
        // 32,768 NULL parameters: a count the server reads as unsigned.
        let mut bind = b"\0\0".to_vec();
        bind.extend_from_slice(&0u16.to_be_bytes());
        bind.extend_from_slice(&32_768u16.to_be_bytes());
        for _ in 0..32_768 {
            bind.extend_from_slice(&(-1i32).to_be_bytes());
        }
        bind.extend_from_slice(&1u16.to_be_bytes());
        bind.extend_from_slice(&0i16.to_be_bytes());
        let b = decode_bind(&bind).expect("the server decodes it, so must the relay");
        assert_eq!(b.formats, vec![0]);
    }

    #[test]
    fn bind_parameters_show_each_value_by_its_format() {
        let bind = |formats: &[i16], values: &[Option<&[u8]>]| {
            let mut b = b"\0s1\0".to_vec();
            b.extend_from_slice(&(formats.len() as u16).to_be_bytes());
            for f in formats {
                b.extend_from_slice(&f.to_be_bytes());
            }
            b.extend_from_slice(&(values.len() as u16).to_be_bytes());
            for v in values {
                match v {
                    Some(v) => {
                        b.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        b.extend_from_slice(v);
                    }
                    None => b.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
            b.extend_from_slice(&0u16.to_be_bytes());
            b
        };
        let owned = |v: BindValues<'_>| sqlgate_net::parameters::Parameters::Lent(&v).to_vec();
        let values: [Option<&[u8]>; 3] = [Some(b"42"), None, Some(b"\x00\x01")];
        let shown = |formats: &[i16]| {
            bind_parameters(&bind(formats, &values)).map(|(name, v)| (name.to_vec(), owned(v)))
        };
        let text = |s: &str| Some(s.to_owned());
        // No codes: all text; one code: all of it; one each; codes
        // beyond the values' count are the server's error, not ours.
        assert_eq!(
            shown(&[]),
            Some((b"s1".to_vec(), vec![text("42"), None, text("\0\u{1}")]))
        );
        assert_eq!(
            shown(&[1]),
            Some((b"s1".to_vec(), vec![text("42"), None, text("\\x0001")]))
        );
        assert_eq!(
            shown(&[1, 0, 0]).map(|(_, v)| v),
            Some(vec![text("42"), None, text("\0\u{1}")])
        );
        assert_eq!(
            shown(&[0, 0, 1]).map(|(_, v)| v),
            Some(vec![text("42"), None, text("\\x0001")])
        );
        // Text that is not UTF-8 shows lossily; a cut body does not decode.
        assert_eq!(
            bind_parameters(&bind(&[], &[Some(b"a\xff")])).map(|(_, v)| owned(v)),
            Some(vec![text("a\u{fffd}")])
        );
        let whole = bind(&[0], &values);
        assert!(bind_parameters(&whole[..whole.len() - 6]).is_none());
    }

    #[test]
    fn binds_and_errors() {
        let bind = [
            &b"p1\0s1\0"[..],
            &1i16.to_be_bytes(),
            &1i16.to_be_bytes(),
            &2i16.to_be_bytes(),
            &2i32.to_be_bytes(),
            b"42",
            &(-1i32).to_be_bytes(),
            &2i16.to_be_bytes(),
            &0i16.to_be_bytes(),
            &1i16.to_be_bytes(),
        ]
        .concat();
        let b = decode_bind(&bind).unwrap();
        assert_eq!(
            (b.portal.as_slice(), b.statement.as_slice()),
            (&b"p1"[..], &b"s1"[..])
        );
        assert_eq!(b.formats, vec![0, 1]);
        assert_eq!(
            (
                format_of(&b.formats, 1),
                format_of(&[1], 5),
                format_of(&[], 0)
            ),
            (1, 1, 0)
        );
        assert!(decode_bind(&bind[..bind.len() - 1]).is_none());
        let err = b"SERROR\0C22P02\0Minvalid input syntax for type integer: \"123-45-6789\"\0DKey (ssn)=(123-45-6789)\0\0";
        let mut out = BytesMut::new();
        scrub_notice(b'E', err, Scrub::Values, &mut out).unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("6789"), "{text}");
        assert!(
            text.contains("22P02") && text.contains("integer: ***"),
            "{text}"
        );
    }
}
