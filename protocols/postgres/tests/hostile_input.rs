//! Every decoder that reads peer bytes, fed mutations of valid messages
//! (`sqlgate_net::hostile`: truncated, bytes flipped, length and count
//! fields replaced with the values that mean something on this wire,
//! bytes inserted and removed). A decoder may refuse; it must never panic
//! or produce output that breaks its own framing. (A panic would end only
//! the session's task, but network input must get a protocol error.)

use std::sync::Arc;

use bytes::BytesMut;
use sqlgate_postgres::frame::peek_header;
use sqlgate_postgres::mask::{self, ActiveMask, CellMask, Field, Scrub};
use sqlgate_postgres::messages::{auth, error_response, parameter_status, query, startup};
use sqlgate_postgres::ScramSecret;

/// Mutations per sample.
const ROUNDS: usize = 4_000;

/// Bytes with a meaning on the PostgreSQL wire: terminators, the NULL
/// length (-1 = 0xff..), sign bits of big-endian counts.
const MARKERS: [u8; 5] = [0x00, 0x01, 0x7f, 0x80, 0xff];

fn hostile(what: &str, seed: u64, samples: &[Vec<u8>], check: impl FnMut(&[u8]) -> bool) {
    sqlgate_net::hostile::check_decoder(what, seed, ROUNDS, samples, &MARKERS, check);
}

fn be16(v: i16) -> [u8; 2] {
    v.to_be_bytes()
}

fn be32(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

#[test]
fn startup_and_authentication_messages() {
    let startup = [
        &be32(196_608)[..],
        b"user\0bob\0database\0shop\0application_name\0psql\0\0",
    ]
    .concat();
    let cancel = [&be32(80_877_102)[..], &be32(4242), &[9; 32]].concat();
    hostile("startup packet", 1, &[startup, cancel], |p| {
        startup::decode(p).is_ok()
    });
    let initial = [&b"SCRAM-SHA-256\0"[..], &be32(8), b"n,,n=,r="].concat();
    hostile("SASLInitialResponse", 2, &[initial], |p| {
        auth::decode_sasl_initial(p).is_ok()
    });
    hostile("PasswordMessage", 3, &[b"s3cret\0".to_vec()], |p| {
        auth::decode_password(p).is_ok()
    });
    let secret = ScramSecret::from_password(b"pw");
    hostile(
        "SCRAM client-first",
        4,
        &[b"n,,n=bob,r=rOprNGfwEbeRWgbNEkqO".to_vec()],
        |p| secret.server_first(p).is_ok(),
    );
}

#[test]
fn frames_and_statement_texts() {
    let query = [&b"Q"[..], &be32(13), b"select 1\0"].concat();
    hostile("message header", 5, &[query], |p| {
        match peek_header(p, 1 << 20) {
            Ok(Some((_, total))) => {
                assert!((5..=(1 << 20) + 1).contains(&total));
                true
            }
            _ => false,
        }
    });
    hostile("Query", 6, &[b"select 1\0".to_vec()], |p| {
        query::query_text(p).is_ok()
    });
    let parse = [&b"s1\0select $1\0"[..], &be16(1), &be32(23)].concat();
    hostile("Parse", 7, &[parse], |p| query::parse_text(p).is_ok());
    let bind = [
        &b"p1\0s1\0"[..],
        &be16(1),
        &be16(1),
        &be16(2),
        &be32(4),
        &be32(7),
        &be32(-1),
        &be16(2),
        &be16(0),
        &be16(1),
    ]
    .concat();
    hostile("Bind", 8, &[bind], |p| match mask::decode_bind(p) {
        Some(b) => {
            for i in 0..4 {
                let f = mask::format_of(&b.formats, i);
                assert!(b.formats.contains(&f) || f == 0);
            }
            true
        }
        None => false,
    });
    hostile("Describe", 9, &[b"Ss1\0".to_vec()], |p| {
        mask::decode_target(p).is_some()
    });
    let execute = [&b"p1\0"[..], &be32(100)].concat();
    hostile("Execute", 10, &[execute], |p| {
        mask::decode_execute(p).is_some()
    });
    hostile(
        "ParameterStatus",
        11,
        &[b"client_encoding\0UTF8\0".to_vec()],
        |p| parameter_status::decode(p).is_some(),
    );
}

#[test]
fn errors_and_notices() {
    let error = b"SERROR\0VERROR\0C23505\0Mduplicate key value violates unique constraint \"customers_email_key\"\0DKey (email)=(a@b.c) already exists.\0\0".to_vec();
    hostile("ErrorResponse", 12, &[error], |p| {
        for scrub in [Scrub::Keep, Scrub::Values, Scrub::All] {
            let mut out = BytesMut::new();
            if mask::scrub_notice(b'E', p, scrub, &mut out).is_some() {
                // A whole message: its length field covers the rest.
                let len = u32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize;
                assert_eq!(len + 1, out.len());
            }
        }
        error_response::message_field(p).is_some()
    });
}

/// Stars every byte; fits in place.
#[derive(Debug)]
struct Star;

impl CellMask for Star {
    fn as_text(&self, f: &Field) -> bool {
        f.type_oid != mask::TEXT_OID
    }
    fn apply(&self, _: &Field, v: &[u8], out: &mut Vec<u8>) -> bool {
        out.extend(std::iter::repeat_n(b'*', v.len()));
        true
    }
    fn fits_in_place(&self, _: &Field, _: &[u8]) -> bool {
        true
    }
    fn apply_in_place(&self, _: &Field, v: &mut [u8]) {
        v.fill(b'*');
    }
}

fn field(name: &str, type_oid: u32, format: i16) -> Field {
    Field {
        name: name.as_bytes().to_vec(),
        table_oid: 16_384,
        column: 2,
        type_oid,
        type_len: -1,
        type_mod: -1,
        format,
    }
}

#[test]
fn row_descriptions_and_data_rows() {
    let fields = vec![
        field("id", 23, 1),
        field("email", 25, 0),
        field("ssn", 1043, 0),
    ];
    let mut msg = BytesMut::new();
    mask::encode_row_description(&fields, &mut msg);
    hostile("RowDescription", 13, &[msg[5..].to_vec()], |p| {
        mask::decode_row_description(p).is_some()
    });
    let active = ActiveMask {
        fields,
        cells: vec![None, Some(Arc::new(Star)), Some(Arc::new(Star))],
    };
    let row = [
        &be16(3)[..],
        &be32(4),
        &7i32.to_be_bytes(),
        &be32(9),
        b"a@b.c.com",
        &be32(-1),
    ]
    .concat();
    let (mut out, mut scratch) = (BytesMut::new(), Vec::new());
    hostile("DataRow", 14, &[row], |p| {
        let _ = mask::data_row_columns(p);
        let mut copy = p.to_vec();
        let in_place = mask::mask_data_row_in_place(&mut copy, &active);
        assert_eq!(copy.len(), p.len());
        out.clear();
        let rewritten = mask::mask_data_row(p, &active, &mut out, &mut scratch).is_some();
        if rewritten {
            let len = u32::from_be_bytes([out[1], out[2], out[3], out[4]]) as usize;
            assert_eq!(len + 1, out.len());
        }
        in_place || rewritten
    });
}
