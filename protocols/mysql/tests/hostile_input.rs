//! Every decoder that reads peer bytes, fed mutations of valid packets
//! (`sqlgate_net::hostile`: truncated, bytes flipped, length prefixes and
//! markers replaced with the values that mean something on this wire,
//! bytes inserted and removed). A decoder may refuse; it must never panic
//! or claim more bytes than it was given. (A panic would end only the
//! session's task, but network input must get a protocol error.)

use std::sync::Arc;

use mysql_common::constants::CapabilityFlags;
use mysql_common::io::ParseBuf;
use mysql_common::packets::HandshakeResponse;
use mysql_common::proto::MyDeserialize;
use sqlgate_mysql::mask::{
    self, column_type, ActiveMask, CellMask, Column, Scrub, BINARY_CHARSET, UTF8MB4,
};
use sqlgate_mysql::messages::{change_user, err, lenenc_int, ok};
use sqlgate_mysql::packet;
use sqlgate_mysql::response::{Expect, Response};

/// Mutations per sample.
const ROUNDS: usize = 4_000;

/// Bytes with a meaning on the MySQL wire: NULL cell, length-encoded
/// integer prefixes, EOF, ERR, OK.
const MARKERS: [u8; 7] = [0x00, 0x01, 0xfb, 0xfc, 0xfd, 0xfe, 0xff];

fn hostile(what: &str, seed: u64, samples: &[Vec<u8>], check: impl FnMut(&[u8]) -> bool) {
    sqlgate_net::hostile::check_decoder(what, seed, ROUNDS, samples, &MARKERS, check);
}

fn column(t: u8, charset: u16) -> Column {
    Column {
        schema: b"shop".to_vec(),
        table: b"c".to_vec(),
        org_table: b"customers".to_vec(),
        name: b"email".to_vec(),
        org_name: b"email".to_vec(),
        charset,
        length: 255,
        column_type: t,
        flags: 0,
        decimals: 0,
    }
}

#[test]
fn column_definitions_err_and_ok_packets() {
    let defs: Vec<Vec<u8>> = [
        column(column_type::VAR_STRING, UTF8MB4),
        column(column_type::LONG, BINARY_CHARSET),
        column(column_type::DATETIME, BINARY_CHARSET),
    ]
    .iter()
    .map(mask::encode_column)
    .collect();
    hostile("column definition", 1, &defs, |p| {
        let Some(c) = mask::decode_column(p) else {
            return false;
        };
        let t = mask::text_column(p, &c).expect("a decoded column turns text");
        assert!(mask::decode_column(&t).is_some());
        true
    });
    let errs = vec![
        [
            &[0xff, 0x26, 0x04, b'#'][..],
            b"23000",
            b"Duplicate entry 'a@b.c' for key 'email'",
        ]
        .concat(),
        [&[0xff, 0x15, 0x04][..], b"no sqlstate"].concat(),
    ];
    hostile("ERR", 2, &errs, |p| {
        for scrub in [Scrub::Keep, Scrub::Values, Scrub::All] {
            if let Some(out) = mask::scrub_err(p, scrub) {
                assert_eq!(out.first(), Some(&0xff));
            }
        }
        err::decode(p).is_some()
    });
    let oks = vec![
        ok::payload(ok::STATUS_AUTOCOMMIT),
        vec![0xfe, 0, 0, 2, 0],
        vec![
            0xfe, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x03, b'a', b'b', b'c',
        ],
    ];
    hostile("OK/EOF", 3, &oks, |p| {
        let _ = ok::eof_status(p);
        let _ = ok::terminator_status(p);
        if let Some((n, used)) = lenenc_int(p) {
            assert!(
                used <= p.len(),
                "lenenc {n} claims {used} of {} bytes",
                p.len()
            );
        }
        if let Some((len, _)) = packet::header(p) {
            assert!(len < 1 << 24);
        }
        ok::ok_status(p).is_some()
    });
}

/// Stars every byte (text) and every binary value it can.
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
    fn binary(&self, _: &Column, v: &[u8], out: &mut Vec<u8>) -> bool {
        out.extend(std::iter::repeat_n(b'*', v.len()));
        true
    }
    fn fits_in_place(&self, _: &Column, _: &[u8]) -> bool {
        true
    }
    fn apply_in_place(&self, _: &Column, v: &mut [u8]) {
        v.fill(b'*');
    }
}

/// Masking in place leaves a row it refuses untouched, never changes a
/// row's length, and writes what the rewrite writes.
fn in_place(row: &[u8], active: &ActiveMask, binary: bool, rewritten: Option<&[u8]>) -> bool {
    let mut copy = row.to_vec();
    let done = mask::mask_row_in_place(&mut copy, active, binary, &mut Vec::new());
    if done {
        assert_eq!(copy.len(), row.len());
        if let Some(r) = rewritten.filter(|r| r.len() == row.len()) {
            assert_eq!(copy, r, "in place differs from the rewrite");
        }
    } else {
        assert_eq!(copy, row, "a row refused in place was changed");
    }
    done
}

#[test]
fn text_and_binary_rows() {
    let types = [
        column_type::LONG,
        column_type::VAR_STRING,
        column_type::DATETIME,
        column_type::DOUBLE,
        column_type::LONGLONG,
        column_type::NEWDECIMAL,
        column_type::TINY,
    ];
    let active = ActiveMask {
        columns: types.iter().map(|&t| column(t, UTF8MB4)).collect(),
        cells: types
            .iter()
            .enumerate()
            .map(|(i, _)| (i % 2 == 1).then(|| Arc::new(Star) as Arc<dyn CellMask>))
            .collect(),
    };
    let text = [
        &b"\x0242"[..],
        b"\x09a@b.c.com",
        b"\x132024-01-02 03:04:05",
        b"\xfb",
        b"\x0512345",
        b"\x041.50",
        b"\x017",
    ]
    .concat();
    let binary = [
        // Header, NULL bitmap ((7 + 7 + 2) / 8 bytes, column i at bit
        // i + 2): the DOUBLE is NULL, as in the text row.
        &[0x00, 1 << (3 + 2), 0][..],
        &42i32.to_le_bytes(),
        b"\x09a@b.c.com",
        &[7, 0xe8, 0x07, 1, 2, 3, 4, 5],
        &12345i64.to_le_bytes(),
        b"\x041.50",
        &[7],
    ]
    .concat();
    let mut out = Vec::new();
    assert!(mask::mask_text_row(&text, &active, &mut out).is_some());
    assert!(mask::mask_binary_row(&binary, &active, &mut out).is_some());
    hostile("text row", 4, std::slice::from_ref(&text), |p| {
        out.clear();
        let ok = mask::mask_text_row(p, &active, &mut out).is_some();
        in_place(p, &active, false, ok.then_some(&out[..]));
        ok
    });
    hostile("binary row", 5, std::slice::from_ref(&binary), |p| {
        out.clear();
        let ok = mask::mask_binary_row(p, &active, &mut out).is_some();
        in_place(p, &active, true, ok.then_some(&out[..]));
        ok
    });
    // The samples themselves are masked in place.
    assert!(in_place(&text, &active, false, None));
    assert!(in_place(&binary, &active, true, None));
}

fn wire(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (seq, p) in packets.iter().enumerate() {
        packet::encode(seq as u8, p, &mut out);
    }
    out
}

#[test]
fn response_scanning() {
    let col = mask::encode_column(&column(column_type::VAR_STRING, UTF8MB4));
    let eof = vec![0xfe, 0, 0, 2, 0];
    let ok_fe = vec![0xfe, 0, 0, 2, 0, 0, 0];
    let results = wire(&[
        vec![2],
        col.clone(),
        col.clone(),
        eof.clone(),
        b"\x01a\xfb".to_vec(),
        b"\x02bb\x01c".to_vec(),
        eof.clone(),
    ]);
    let deprecated = wire(&[vec![1], col.clone(), b"\x01a".to_vec(), ok_fe]);
    let prepare = wire(&[
        vec![0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0],
        col.clone(),
        eof.clone(),
        col.clone(),
        eof.clone(),
    ]);
    let single = wire(&[ok::payload(0)]);
    let infile = wire(&[b"\xfb/etc/passwd".to_vec()]);
    let samples = [results, deprecated, prepare, single, infile];
    for (seed, expect) in [
        Expect::Results,
        Expect::Rows,
        Expect::Prepare,
        Expect::FieldList,
        Expect::Single,
    ]
    .into_iter()
    .enumerate()
    {
        for deprecate_eof in [false, true] {
            let what = format!("{expect:?} response");
            hostile(&what, 10 + seed as u64, &samples, |stream| {
                let mut r = Response::new(expect, deprecate_eof);
                let mut at = 0;
                while !r.done() && !r.wants_client_data() {
                    let Ok(n) = r.scan(&stream[at..]) else {
                        return false;
                    };
                    if n == 0 {
                        return false;
                    }
                    at += n;
                    assert!(at <= stream.len(), "scanned past the end");
                }
                true
            });
        }
    }
}

#[test]
fn client_commands_and_handshake_responses() {
    let caps = CapabilityFlags::CLIENT_SECURE_CONNECTION.bits()
        | CapabilityFlags::CLIENT_PLUGIN_AUTH.bits()
        | CapabilityFlags::CLIENT_CONNECT_WITH_DB.bits();
    let change = [
        &b"bob\0"[..],
        &[20],
        &[7; 20],
        b"shop\0",
        &[45, 0],
        b"mysql_native_password\0",
    ]
    .concat();
    hostile("COM_CHANGE_USER", 20, &[change], |p| {
        let _ = change_user::decode(p, 0);
        let _ = change_user::decode(p, CapabilityFlags::CLIENT_SECURE_CONNECTION.bits());
        change_user::decode(p, caps).is_some()
    });
    let kills = [
        b"KILL QUERY 12".to_vec(),
        b"  kill hard connection 4294967296 ;".to_vec(),
        "KILL QUERY \u{00e9}".as_bytes().to_vec(),
    ];
    hostile("KILL", 21, &kills, |p| {
        matches!(sqlgate_mysql::kill::parse(p), Some(Ok(_)))
    });
    let response = HandshakeResponse::new(
        Some(&[1u8; 20][..]),
        (10, 11, 0),
        Some(&b"bob"[..]),
        Some(&b"shop"[..]),
        Some(mysql_common::packets::AuthPlugin::MysqlNativePassword),
        CapabilityFlags::CLIENT_PROTOCOL_41
            | CapabilityFlags::CLIENT_SECURE_CONNECTION
            | CapabilityFlags::CLIENT_PLUGIN_AUTH
            | CapabilityFlags::CLIENT_CONNECT_WITH_DB
            | CapabilityFlags::CLIENT_CONNECT_ATTRS
            | CapabilityFlags::CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
        Some(
            [("_client_name".into(), "libmariadb".into())]
                .into_iter()
                .collect(),
        ),
        16 * 1024 * 1024,
    );
    let mut bytes = Vec::new();
    mysql_common::proto::MySerialize::serialize(&response, &mut bytes);
    hostile("handshake response", 22, &[bytes], |p| {
        HandshakeResponse::deserialize((), &mut ParseBuf(p)).is_ok()
    });
}
