//! Masking on the PostgreSQL wire: result columns resolved through the
//! catalog by table OID and attribute number, and masked values written
//! in the column's format — the text format, or the binary format of the
//! common types (re-encoded, or a typed default when the function cannot
//! apply).

use std::sync::Arc;

use sqlgate_postgres::mask::{CellMask, Field, ResultMask, Scrub};

use crate::policy::mask::catalog::CatalogSnapshot;
use crate::policy::mask::functions::{HashKey, MaskFunction, REDACTED};
use crate::policy::mask::result::StatementMasks;

use super::dates;

/// A statement's masks in PostgreSQL terms.
#[derive(Debug)]
pub struct PgResultMask {
    /// What the statement needs.
    pub masks: StatementMasks,
    /// The target's catalog when the statement was judged.
    pub catalog: Option<Arc<CatalogSnapshot>>,
    /// The `hash` key.
    pub key: HashKey,
    /// Counts the cells masked (`/metrics`).
    pub cells: prometheus_client::metrics::counter::Counter,
}

impl ResultMask for PgResultMask {
    fn columns(&self, fields: &[Field]) -> Option<Vec<Option<Arc<dyn CellMask>>>> {
        let origins: Vec<_> = fields
            .iter()
            .map(|f| {
                (f.table_oid != 0)
                    .then(|| self.catalog.as_ref()?.column_by_oid(f.table_oid, f.column))
                    .flatten()
            })
            .collect();
        let names: Vec<&[u8]> = fields.iter().map(|c| c.name.as_slice()).collect();
        super::cells(&self.masks, &origins, &names, |function| {
            Arc::new(PgCell {
                function,
                key: self.key.clone(),
                cells: self.cells.clone(),
            }) as Arc<dyn CellMask>
        })
    }

    fn scrub(&self) -> Scrub {
        self.masks.scrub()
    }
}

/// One column's masking function.
#[derive(Debug)]
struct PgCell {
    function: MaskFunction,
    key: HashKey,
    cells: prometheus_client::metrics::counter::Counter,
}

/// PostgreSQL type OIDs the masks know.
mod oid {
    pub const BOOL: u32 = 16;
    #[allow(dead_code)] // named by the tests
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    #[allow(dead_code)] // named by the tests
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    #[allow(dead_code)] // named by the tests
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Types whose binary form is their text.
fn textual(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::UNKNOWN
    )
}

fn numeric(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::INT2 | oid::INT4 | oid::INT8 | oid::FLOAT4 | oid::FLOAT8 | oid::NUMERIC
    )
}

fn datelike(type_oid: u32) -> bool {
    matches!(type_oid, oid::DATE | oid::TIMESTAMP | oid::TIMESTAMPTZ)
}

impl PgCell {
    /// The text form of a value, when the gateway can read it.
    fn text(field: &Field, value: &[u8]) -> Option<String> {
        if field.format == 0 {
            return Some(String::from_utf8_lossy(value).into_owned());
        }
        let int = |n: usize| -> Option<i64> {
            Some(match n {
                2 => i16::from_be_bytes(value.try_into().ok()?) as i64,
                4 => i32::from_be_bytes(value.try_into().ok()?) as i64,
                _ => i64::from_be_bytes(value.try_into().ok()?),
            })
        };
        match field.type_oid {
            t if textual(t) => Some(String::from_utf8_lossy(value).into_owned()),
            oid::INT2 => int(2).map(|v| v.to_string()),
            oid::INT4 => int(4).map(|v| v.to_string()),
            oid::INT8 => int(8).map(|v| v.to_string()),
            oid::FLOAT4 => Some(f32::from_be_bytes(value.try_into().ok()?).to_string()),
            oid::FLOAT8 => Some(f64::from_be_bytes(value.try_into().ok()?).to_string()),
            oid::BOOL => Some(if value.first()? != &0 { "t" } else { "f" }.to_owned()),
            oid::JSON => Some(String::from_utf8_lossy(value).into_owned()),
            oid::JSONB => Some(String::from_utf8_lossy(value.get(1..)?).into_owned()),
            oid::DATE => Some(dates::pg_date_text(int(4)?)),
            oid::TIMESTAMP | oid::TIMESTAMPTZ => Some(dates::pg_timestamp_text(int(8)?)),
            _ => None,
        }
    }

    /// Writes `text` as the value of a column reported as text (or of a
    /// textual column): the same bytes in both formats.
    fn put(text: Option<String>, out: &mut Vec<u8>) -> bool {
        match text {
            Some(t) => {
                out.extend_from_slice(t.as_bytes());
                true
            }
            None => false,
        }
    }

    /// A redacted value: `***` for text; NULL for every other type, as a
    /// number or date in its place would look like a true value (a masked
    /// `count(email)` must not read as 0).
    fn redacted(field: &Field, out: &mut Vec<u8>) -> bool {
        if textual(field.type_oid) || field.type_oid == 0 && field.format == 0 {
            out.extend_from_slice(REDACTED.as_bytes());
            return true;
        }
        false
    }
}

impl PgCell {
    /// Whether `year_only` or `round` applies to the column's type (text
    /// counts: the function works on its text).
    fn fits(&self, field: &Field) -> bool {
        let t = field.type_oid;
        let text = textual(t) || t == 0 && field.format == 0;
        match self.function {
            MaskFunction::Round(_) => text || numeric(t),
            _ => text || datelike(t),
        }
    }
}

impl CellMask for PgCell {
    fn fits_in_place(&self, field: &Field, value: &[u8]) -> bool {
        (field.format == 0 || textual(field.type_oid)) && self.function.fits_in_place(value)
    }

    fn apply_in_place(&self, _field: &Field, value: &mut [u8]) {
        self.cells.inc();
        self.function.apply_in_place(value)
    }

    fn as_text(&self, field: &Field) -> bool {
        let t = field.type_oid;
        match self.function {
            MaskFunction::Null | MaskFunction::Redact => false,
            // A scrubbed text (or array of texts, element by element) in
            // the text format is still a value of its type.
            MaskFunction::ScrubLiterals(_)
            | MaskFunction::ScrubPlan(_)
            | MaskFunction::ScrubDefault(_) => field.format == 1 && !textual(t) && t != 0,
            MaskFunction::YearOnly => false,
            MaskFunction::Round(_) => false,
            _ => !textual(t) && t != 0,
        }
    }

    fn apply(&self, field: &Field, value: &[u8], out: &mut Vec<u8>) -> bool {
        self.cells.inc();
        let t = field.type_oid;
        match &self.function {
            MaskFunction::Null => false,
            MaskFunction::Redact => Self::redacted(field, out),
            MaskFunction::YearOnly if datelike(t) && field.format == 1 => {
                let start = if t == oid::DATE {
                    <[u8; 4]>::try_from(value).ok().map(|b| {
                        dates::pg_date_year_start(i32::from_be_bytes(b))
                            .to_be_bytes()
                            .to_vec()
                    })
                } else {
                    <[u8; 8]>::try_from(value).ok().map(|b| {
                        dates::pg_timestamp_year_start(i64::from_be_bytes(b))
                            .to_be_bytes()
                            .to_vec()
                    })
                };
                match start {
                    Some(b) => {
                        out.extend_from_slice(&b);
                        true
                    }
                    None => false,
                }
            }
            MaskFunction::YearOnly if datelike(t) => {
                let text = Self::text(field, value).unwrap_or_default();
                let Some(day) = self.function.apply(&text, &self.key) else {
                    return false;
                };
                let suffix = match t {
                    oid::TIMESTAMP => " 00:00:00",
                    oid::TIMESTAMPTZ => " 00:00:00+00",
                    _ => "",
                };
                Self::put(Some(format!("{day}{suffix}")), out)
            }
            MaskFunction::YearOnly | MaskFunction::Round(_) if !self.fits(field) => {
                // Not a type the function applies to.
                Self::redacted(field, out)
            }
            MaskFunction::Round(digits) if numeric(t) => {
                let Some(text) = Self::text(field, value) else {
                    return Self::redacted(field, out);
                };
                let Some(rounded) = self.function.apply(&text, &self.key) else {
                    return false;
                };
                let integral = matches!(t, oid::INT2 | oid::INT4 | oid::INT8);
                let rounded = if integral && *digits > 0 {
                    text
                } else {
                    rounded
                };
                if field.format == 0 {
                    return Self::put(Some(rounded), out);
                }
                let Ok(x) = rounded.parse::<f64>() else {
                    return Self::redacted(field, out);
                };
                match t {
                    oid::INT2 => out.extend_from_slice(&(x as i16).to_be_bytes()),
                    oid::INT4 => out.extend_from_slice(&(x as i32).to_be_bytes()),
                    oid::INT8 => out.extend_from_slice(&(x as i64).to_be_bytes()),
                    oid::FLOAT4 => out.extend_from_slice(&(x as f32).to_be_bytes()),
                    oid::FLOAT8 => out.extend_from_slice(&x.to_be_bytes()),
                    // Binary numeric is not re-encoded: a typed default.
                    _ => return Self::redacted(field, out),
                }
                true
            }
            // Text functions on the text form, without copying it.
            f if field.format == 0 || textual(t) => f.apply_bytes(value, &self.key, out),
            f => {
                // Text functions: on the text form, reported as text.
                let text = Self::text(field, value);
                let masked = match (text, f) {
                    (Some(text), f) => f.apply(&text, &self.key),
                    // Unreadable binary: hash its bytes, redact otherwise.
                    (None, MaskFunction::Hash) => f.apply(&hex::encode(value), &self.key),
                    (None, _) => Some(REDACTED.to_owned()),
                };
                Self::put(masked, out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary width of fixed-size types.
    fn width(type_oid: u32) -> Option<usize> {
        Some(match type_oid {
            oid::BOOL => 1,
            oid::INT2 => 2,
            oid::INT4 | oid::FLOAT4 | oid::DATE => 4,
            oid::INT8 | oid::FLOAT8 | oid::TIME | oid::TIMESTAMP | oid::TIMESTAMPTZ => 8,
            oid::UUID => 16,
            _ => return None,
        })
    }

    /// A value of the type in the format, as a server sends it.
    fn sample(type_oid: u32, format: i16) -> Vec<u8> {
        if format == 0 {
            return match type_oid {
                oid::BOOL => b"t".to_vec(),
                oid::DATE => b"2024-02-29".to_vec(),
                oid::TIME => b"23:59:58".to_vec(),
                oid::TIMESTAMP => b"2024-02-29 23:59:58.5".to_vec(),
                oid::TIMESTAMPTZ => b"2024-02-29 23:59:58+01".to_vec(),
                oid::UUID => b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_vec(),
                oid::JSONB => br#"{"email": "bob@mail.test"}"#.to_vec(),
                t if numeric(t) => b"-1234.5678".to_vec(),
                _ => b"bob@mail.test".to_vec(),
            };
        }
        match type_oid {
            oid::BOOL => vec![1],
            oid::INT2 => (-7i16).to_be_bytes().to_vec(),
            oid::INT4 => 123_456i32.to_be_bytes().to_vec(),
            oid::INT8 => i64::MIN.to_be_bytes().to_vec(),
            oid::FLOAT4 => 1.5f32.to_be_bytes().to_vec(),
            oid::FLOAT8 => (-2.25f64).to_be_bytes().to_vec(),
            oid::DATE => 8_825i32.to_be_bytes().to_vec(),
            oid::TIME | oid::TIMESTAMP | oid::TIMESTAMPTZ => {
                762_479_998_000_000i64.to_be_bytes().to_vec()
            }
            oid::NUMERIC => vec![0, 2, 0, 0, 0, 0, 0, 4, 0x04, 0xd2, 0x16, 0x2e],
            oid::UUID => vec![0xa0; 16],
            oid::JSONB => b"\x01{}".to_vec(),
            _ => b"bob@mail.test".to_vec(),
        }
    }

    /// Whatever the server sends, a masked value that keeps a fixed-size
    /// type in binary has that type's width (a client would fail to decode
    /// it otherwise), and masking in place writes exactly what the rewrite
    /// would have.
    #[test]
    fn masked_values_keep_their_binary_width_and_in_place_equals_rewrite() {
        let types = [
            oid::BOOL,
            oid::INT2,
            oid::INT4,
            oid::INT8,
            oid::FLOAT4,
            oid::FLOAT8,
            oid::NUMERIC,
            oid::DATE,
            oid::TIME,
            oid::TIMESTAMP,
            oid::TIMESTAMPTZ,
            oid::UUID,
            oid::JSONB,
            oid::TEXT,
            oid::VARCHAR,
            oid::BYTEA,
        ];
        let key = HashKey::new(b"k");
        for (f, function) in super::super::tests::every_function()
            .into_iter()
            .enumerate()
        {
            let cell = PgCell {
                function,
                key: key.clone(),
                cells: Default::default(),
            };
            for (i, &t) in types.iter().enumerate() {
                for format in [0i16, 1] {
                    let field = Field {
                        name: b"v".to_vec(),
                        table_oid: 16_384,
                        column: 1,
                        type_oid: t,
                        type_len: -1,
                        type_mod: -1,
                        format,
                    };
                    let what = format!("{:?} on type {t} format {format}", cell.function);
                    let seed = (f * 100 + i) as u64 * 2 + format as u64;
                    let mut out = Vec::new();
                    sqlgate_net::hostile::inputs(
                        seed,
                        200,
                        &[sample(t, format)],
                        &[0, 1, 0x7f, 0x80, 0xff, b'-', b'.', b'@'],
                        |value| {
                            out.clear();
                            let masked = CellMask::apply(&cell, &field, value, &mut out);
                            if masked && format == 1 && !CellMask::as_text(&cell, &field) {
                                if let Some(n) = width(t) {
                                    assert_eq!(out.len(), n, "{what}: {value:02x?} → {out:02x?}");
                                }
                            }
                            if cell.fits_in_place(&field, value) {
                                let mut copy = value.to_vec();
                                cell.apply_in_place(&field, &mut copy);
                                assert!(masked, "{what}: in place but NULL on rewrite");
                                assert_eq!(copy, out, "{what}: in place differs from rewrite");
                            }
                        },
                    );
                }
            }
        }
    }
}
