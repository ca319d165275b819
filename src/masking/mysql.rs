//! Masking on the MySQL wire: result columns resolved through the catalog
//! by schema, org_table and org_name, and masked values written in the
//! text protocol or the binary protocol of the column's type
//! (re-encoded, or a typed default when the function cannot apply).

use std::sync::Arc;

use sqlgate_mysql::mask::{column_type as ty, CellMask, Column, ResultMask, Scrub, BINARY_CHARSET};

use crate::policy::mask::catalog::CatalogSnapshot;
use crate::policy::mask::functions::{HashKey, MaskFunction, REDACTED};
use crate::policy::mask::result::StatementMasks;

/// A statement's masks in MySQL terms.
#[derive(Debug)]
pub struct MyResultMask {
    /// What the statement needs.
    pub masks: StatementMasks,
    /// The target's catalog when the statement was judged.
    pub catalog: Option<Arc<CatalogSnapshot>>,
    /// The `hash` key.
    pub key: HashKey,
    /// Counts the cells masked (`/metrics`).
    pub cells: prometheus_client::metrics::counter::Counter,
}

impl ResultMask for MyResultMask {
    fn columns(&self, columns: &[Column]) -> Option<Vec<Option<Arc<dyn CellMask>>>> {
        let origins: Vec<_> = columns
            .iter()
            .map(|c| {
                if c.org_table.is_empty() || c.org_name.is_empty() {
                    return None;
                }
                self.catalog.as_ref()?.base_column(
                    &String::from_utf8_lossy(&c.schema),
                    &String::from_utf8_lossy(&c.org_table),
                    &String::from_utf8_lossy(&c.org_name),
                )
            })
            .collect();
        let names: Vec<&[u8]> = columns.iter().map(|c| c.name.as_slice()).collect();
        super::cells(&self.masks, &origins, &names, |function| {
            Arc::new(MyCell {
                function,
                key: self.key.clone(),
                cells: self.cells.clone(),
            }) as Arc<dyn CellMask>
        })
    }

    fn procedure(&self) -> bool {
        self.masks.procedure
    }

    fn scrub(&self) -> Scrub {
        self.masks.scrub()
    }
}

/// One column's masking function.
#[derive(Debug)]
struct MyCell {
    function: MaskFunction,
    key: HashKey,
    cells: prometheus_client::metrics::counter::Counter,
}

/// String-like types (length-encoded in the binary protocol).
fn textual(c: &Column) -> bool {
    matches!(
        c.column_type,
        ty::VARCHAR | ty::VAR_STRING | 0xfe | 0xf5 | 0xf7 | 0xf8
    ) || (matches!(c.column_type, 0xf9..=0xfc) && c.charset != BINARY_CHARSET)
}

fn integral(c: &Column) -> bool {
    matches!(
        c.column_type,
        ty::TINY | ty::SHORT | ty::LONG | ty::INT24 | ty::LONGLONG | ty::YEAR
    )
}

fn numeric(c: &Column) -> bool {
    integral(c)
        || matches!(
            c.column_type,
            ty::FLOAT | ty::DOUBLE | ty::DECIMAL | ty::NEWDECIMAL
        )
}

fn datelike(c: &Column) -> bool {
    matches!(
        c.column_type,
        ty::DATE | ty::NEWDATE | ty::DATETIME | ty::TIMESTAMP
    )
}

/// Size of an integer column's binary value.
fn int_size(c: &Column) -> usize {
    match c.column_type {
        ty::TINY => 1,
        ty::SHORT | ty::YEAR => 2,
        ty::LONGLONG => 8,
        _ => 4,
    }
}

const UNSIGNED: u16 = 0x20;

impl MyCell {
    /// The masked text of a value in text form, for a column that keeps
    /// its type (or is reported as text).
    fn masked_text(&self, c: &Column, text: &str) -> Option<String> {
        let f = &self.function;
        match f {
            MaskFunction::Null => None,
            MaskFunction::Redact if textual(c) => Some(REDACTED.to_owned()),
            // NULL: a number or date in its place would look true.
            MaskFunction::Redact => None,
            MaskFunction::YearOnly if c.column_type == ty::YEAR => Some(text.to_owned()),
            MaskFunction::YearOnly if datelike(c) => {
                let day = f.apply(text, &self.key)?;
                Some(if matches!(c.column_type, ty::DATE | ty::NEWDATE) {
                    day
                } else {
                    format!("{day} 00:00:00")
                })
            }
            MaskFunction::Round(_) if numeric(c) => {
                let r = f.apply(text, &self.key)?;
                Some(if integral(c) {
                    r.split('.').next().unwrap_or("0").to_owned()
                } else {
                    r
                })
            }
            MaskFunction::YearOnly | MaskFunction::Round(_) if !textual(c) => None,
            _ => f.apply(text, &self.key),
        }
    }

    /// The text form of a binary-protocol value.
    fn binary_text(c: &Column, v: &[u8]) -> Option<String> {
        if integral(c) {
            let n = int_size(c);
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(v.get(..n)?);
            let unsigned = c.flags & UNSIGNED != 0;
            let shift = 64 - 8 * n as u32;
            let raw = u64::from_le_bytes(b);
            return Some(if unsigned {
                raw.to_string()
            } else {
                (((raw << shift) as i64) >> shift).to_string()
            });
        }
        match c.column_type {
            ty::FLOAT => Some(f32::from_le_bytes(v.try_into().ok()?).to_string()),
            ty::DOUBLE => Some(f64::from_le_bytes(v.try_into().ok()?).to_string()),
            ty::DATE | ty::NEWDATE | ty::DATETIME | ty::TIMESTAMP => {
                let (&len, rest) = v.split_first()?;
                let rest = rest.get(..len as usize)?;
                let at = |i: usize| rest.get(i).copied().unwrap_or(0) as u32;
                let year = if len >= 2 {
                    u16::from_le_bytes([rest[0], rest[1]])
                } else {
                    0
                };
                let mut s = format!("{year:04}-{:02}-{:02}", at(2), at(3));
                if len >= 7 {
                    s.push_str(&format!(" {:02}:{:02}:{:02}", at(4), at(5), at(6)));
                }
                Some(s)
            }
            _ if textual(c) || matches!(c.column_type, ty::DECIMAL | ty::NEWDECIMAL) => {
                Some(String::from_utf8_lossy(v).into_owned())
            }
            _ => None,
        }
    }

    /// A masked value's binary form for a column that keeps its type.
    fn encode_binary(c: &Column, text: &str, out: &mut Vec<u8>) -> bool {
        if integral(c) {
            let n = int_size(c);
            let v: i128 = text.parse().unwrap_or(0);
            out.extend_from_slice(&(v as u64).to_le_bytes()[..n]);
            return true;
        }
        match c.column_type {
            ty::FLOAT => out.extend_from_slice(&text.parse::<f32>().unwrap_or(0.0).to_le_bytes()),
            ty::DOUBLE => out.extend_from_slice(&text.parse::<f64>().unwrap_or(0.0).to_le_bytes()),
            ty::DATE | ty::NEWDATE | ty::DATETIME | ty::TIMESTAMP | ty::TIME => {
                let parts: Vec<u32> = text
                    .split(|ch: char| !ch.is_ascii_digit())
                    .filter_map(|p| p.parse().ok())
                    .collect();
                match parts.as_slice() {
                    [y, m, d, ..] if *y > 0 && c.column_type != ty::TIME => {
                        out.push(4);
                        out.extend_from_slice(&(*y as u16).to_le_bytes());
                        out.push(*m as u8);
                        out.push(*d as u8);
                    }
                    _ => out.push(0),
                }
            }
            _ => out.extend_from_slice(text.as_bytes()),
        }
        true
    }
}

impl CellMask for MyCell {
    fn fits_in_place(&self, c: &Column, value: &[u8]) -> bool {
        textual(c) && self.function.fits_in_place(value)
    }

    fn apply_in_place(&self, _c: &Column, value: &mut [u8]) {
        self.cells.inc();
        self.function.apply_in_place(value)
    }

    fn as_text(&self, c: &Column) -> bool {
        match self.function {
            MaskFunction::Null
            | MaskFunction::Redact
            | MaskFunction::YearOnly
            | MaskFunction::Round(_) => false,
            _ => !textual(c),
        }
    }

    fn text(&self, c: &Column, value: &[u8], out: &mut Vec<u8>) -> bool {
        self.cells.inc();
        // String-like columns, and the functions that only ever work on
        // text, take the function as it is: on the bytes, without a copy.
        let on_text = matches!(
            self.function,
            MaskFunction::Email
                | MaskFunction::Keep { .. }
                | MaskFunction::Hash
                | MaskFunction::Regex { .. }
        );
        if textual(c) || on_text {
            return self.function.apply_bytes(value, &self.key, out);
        }
        match self.masked_text(c, &String::from_utf8_lossy(value)) {
            Some(t) => {
                out.extend_from_slice(t.as_bytes());
                true
            }
            None => false,
        }
    }

    fn binary(&self, c: &Column, value: &[u8], out: &mut Vec<u8>) -> bool {
        self.cells.inc();
        if textual(c) {
            // The binary form of a string is its text.
            return self.function.apply_bytes(value, &self.key, out);
        }
        let text = Self::binary_text(c, value);
        if self.as_text(c) {
            // Reported as text: the function's text of the value's text.
            let masked = match text {
                Some(t) => self.function.apply(&t, &self.key),
                None if matches!(self.function, MaskFunction::Hash) => {
                    self.function.apply(&hex::encode(value), &self.key)
                }
                None => Some(REDACTED.to_owned()),
            };
            return match masked {
                Some(m) => {
                    out.extend_from_slice(m.as_bytes());
                    true
                }
                None => false,
            };
        }
        let masked = match text {
            Some(t) => self.masked_text(c, &t),
            None => match self.function {
                MaskFunction::Redact if textual(c) => Some(REDACTED.to_owned()),
                _ => None,
            },
        };
        match masked {
            Some(m) => Self::encode_binary(c, &m, out),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlgate_mysql::mask::{
        mask_binary_row, mask_row_in_place, mask_text_row, ActiveMask, UTF8MB4,
    };

    fn column(column_type: u8, flags: u16) -> Column {
        Column {
            schema: b"shop".to_vec(),
            table: b"t".to_vec(),
            org_table: b"t".to_vec(),
            name: b"v".to_vec(),
            org_name: b"v".to_vec(),
            charset: if column_type == ty::VAR_STRING {
                UTF8MB4
            } else {
                BINARY_CHARSET
            },
            length: 20,
            column_type,
            flags,
            decimals: 0,
        }
    }

    /// A binary row of one column (header, NULL bitmap, the value) and a
    /// text row of the same value.
    fn rows(column_type: u8) -> (Vec<u8>, Vec<u8>) {
        let (binary, text): (Vec<u8>, &[u8]) = match column_type {
            ty::TINY => (vec![0xfe], b"-2"),
            ty::SHORT | ty::YEAR => (2024u16.to_le_bytes().to_vec(), b"2024"),
            ty::LONG | ty::INT24 => ((-7i32).to_le_bytes().to_vec(), b"-7"),
            ty::LONGLONG => (u64::MAX.to_le_bytes().to_vec(), b"18446744073709551615"),
            ty::FLOAT => (1.5f32.to_le_bytes().to_vec(), b"1.5"),
            ty::DOUBLE => ((-2.25f64).to_le_bytes().to_vec(), b"-2.25"),
            ty::DATE => (vec![4, 0xe8, 0x07, 2, 29], b"2024-02-29"),
            ty::DATETIME | ty::TIMESTAMP => (
                vec![11, 0xe8, 0x07, 2, 29, 23, 59, 58, 0x40, 0x42, 0x0f, 0],
                b"2024-02-29 23:59:58.999999",
            ),
            ty::TIME => (vec![8, 1, 2, 0, 0, 0, 3, 4, 5], b"-50:04:05"),
            _ => (b"\x0dbob@mail.test".to_vec(), b"bob@mail.test"),
        };
        let mut t = Vec::new();
        sqlgate_mysql::messages::put_lenenc_int(text.len() as u64, &mut t);
        t.extend_from_slice(text);
        ([&[0u8, 0][..], &binary].concat(), t)
    }

    /// Masked rows stay well-formed rows of their columns (a masked value
    /// of the wrong width would shift every later cell for the client),
    /// whatever the server sent and whatever the function.
    #[test]
    fn masked_rows_stay_well_formed_under_hostile_values() {
        let types = [
            ty::TINY,
            ty::SHORT,
            ty::YEAR,
            ty::LONG,
            ty::INT24,
            ty::LONGLONG,
            ty::FLOAT,
            ty::DOUBLE,
            ty::NEWDECIMAL,
            ty::DATE,
            ty::DATETIME,
            ty::TIMESTAMP,
            ty::TIME,
            ty::VAR_STRING,
            0xfc, // BLOB
        ];
        let key = HashKey::new(b"k");
        for (f, function) in super::super::tests::every_function()
            .into_iter()
            .enumerate()
        {
            let cell: Arc<dyn CellMask> = Arc::new(MyCell {
                function,
                key: key.clone(),
                cells: Default::default(),
            });
            for (i, &t) in types.iter().enumerate() {
                for flags in [0, UNSIGNED] {
                    let masked = ActiveMask {
                        columns: vec![column(t, flags)],
                        cells: vec![Some(cell.clone())],
                    };
                    // The column as the client is told it.
                    let told = if cell.as_text(&masked.columns[0]) {
                        column(ty::VAR_STRING, 0)
                    } else {
                        masked.columns[0].clone()
                    };
                    let clear = ActiveMask {
                        columns: vec![told],
                        cells: vec![None],
                    };
                    let (binary, text) = rows(t);
                    let what = format!("{:?} on type {t:#x}", cell);
                    let seed = (f * 100 + i) as u64 * 2 + u64::from(flags != 0);
                    let (mut out, mut again) = (Vec::new(), Vec::new());
                    sqlgate_net::hostile::check_decoder(
                        &what,
                        seed,
                        300,
                        &[binary],
                        &[0, 1, 4, 7, 11, 0xfb, 0xfc, 0xff],
                        |row| {
                            out.clear();
                            let rewritten = mask_binary_row(row, &masked, &mut out).is_some();
                            in_place_agrees(&what, row, &masked, true, rewritten.then_some(&out));
                            if !rewritten {
                                return false;
                            }
                            again.clear();
                            assert!(
                                mask_binary_row(&out, &clear, &mut again).is_some(),
                                "{what}: {row:02x?} masked to a malformed row {out:02x?}"
                            );
                            true
                        },
                    );
                    check_text(&what, seed, &text, &masked, &clear);
                }
            }
        }
    }

    fn check_text(what: &str, seed: u64, text: &[u8], masked: &ActiveMask, clear: &ActiveMask) {
        let (mut out, mut again) = (Vec::new(), Vec::new());
        sqlgate_net::hostile::check_decoder(
            what,
            seed,
            100,
            &[text.to_vec()],
            &[0, 0xfb, 0xfc, 0xfd, b'-', b'.', b'@', b':'],
            |row| {
                out.clear();
                let rewritten = mask_text_row(row, masked, &mut out).is_some();
                in_place_agrees(what, row, masked, false, rewritten.then_some(&out));
                if !rewritten {
                    return false;
                }
                again.clear();
                assert!(
                    mask_text_row(&out, clear, &mut again).is_some(),
                    "{what}: {row:02x?} masked to a malformed text row {out:02x?}"
                );
                true
            },
        );
    }

    /// Masking in place, when it applies, writes what the rewrite would
    /// have (compared as values: the rewrite writes minimal length
    /// prefixes, the server may not).
    fn in_place_agrees(
        what: &str,
        row: &[u8],
        masked: &ActiveMask,
        binary: bool,
        rewritten: Option<&Vec<u8>>,
    ) {
        let mut copy = row.to_vec();
        if !mask_row_in_place(&mut copy, masked, binary, &mut Vec::new()) {
            assert_eq!(copy, row, "{what}: a row not masked in place was changed");
            return;
        }
        let rewritten = rewritten.unwrap_or_else(|| {
            panic!("{what}: {row:02x?} masked in place, refused by the rewrite")
        });
        let clear = ActiveMask {
            columns: masked.columns.clone(),
            cells: vec![None; masked.cells.len()],
        };
        let values = |r: &[u8]| {
            let mut v = Vec::new();
            let ok = if binary {
                mask_binary_row(r, &clear, &mut v)
            } else {
                mask_text_row(r, &clear, &mut v)
            };
            ok.map(|()| v)
        };
        assert_eq!(
            values(&copy),
            values(rewritten),
            "{what}: in place differs from the rewrite for {row:02x?}"
        );
    }
}
