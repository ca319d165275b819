//! A record's body as the SQLite file holds it: a long body compressed
//! (LZ4 block), a short one as text. Why: most of what the recorder's
//! thread spent on a read was the kernel's work on the bytes SQLite
//! writes, each twice (the WAL, then the checkpoint's copy into the
//! file); a busy session's record of a group (hundreds of lines of the
//! same shapes) compresses about six-fold for a fraction of that cost.
//! The chain hashes the body as the session wrote it (`chain.rs`), so a
//! store compressed or not verifies the same way, and a file written
//! before this change reads as before.
//!
//! Packed, a body is a BLOB: one byte naming the form ([`LZ4`]), the
//! body's length (u32, little-endian), the LZ4 block. An unpacked body is
//! TEXT, as before.
//!
//! What the chain proves is the body as read back (decoded), not the
//! stored bytes: the same text can be stored packed or not, and a text
//! body is read leniently (invalid UTF-8 as U+FFFD). Everything that
//! shows a session reads it through here, so what is shown is what was
//! hashed.
//!
//! This module must never turn a stored body it cannot read into a
//! panic, an error that hides the rest of the trail, or an allocation
//! the bytes on disk choose beyond [`MOST_SHRUNK`] times their length:
//! what does not unpack reads as a text that does not match its hash, so
//! `audit verify` reports that record as edited.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};

/// The form byte of an LZ4 block.
const LZ4: u8 = 1;
/// Bodies shorter than this stay text (too short to gain, and a single
/// statement's record stays readable with the `sqlite3` shell).
const SHORTEST: usize = 512;
/// A packed body never claims more than this (the writer's own bound on
/// a record is far below it): a larger claim is not believed, nothing
/// that large is allocated.
const LONGEST: usize = 256 << 20;
/// A body packs only when its block is at least this fraction of it, and
/// a stored block that claims a longer body is not believed: what a
/// forged row can make a reader allocate is at most this many times its
/// bytes on disk (LZ4 alone would allow 255), the same order as a text
/// body's. A legitimate body this repetitive stays text.
const MOST_SHRUNK: usize = 32;
const HEADER: usize = 5;

/// `body` as the store writes it: compressed when long and when that
/// makes it shorter.
pub(super) fn pack(body: &str) -> ToSqlOutput<'_> {
    let bytes = body.as_bytes();
    if bytes.len() < SHORTEST || bytes.len() > LONGEST {
        return ToSqlOutput::Borrowed(ValueRef::Text(bytes));
    }
    let mut out = vec![0; HEADER + lz4_flex::block::get_maximum_output_size(bytes.len())];
    out[0] = LZ4;
    // At most LONGEST, so it fits (checked above).
    out[1..HEADER].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    match lz4_flex::block::compress_into(bytes, &mut out[HEADER..]) {
        Ok(n) if HEADER + n < bytes.len() && n * MOST_SHRUNK >= bytes.len() => {
            out.truncate(HEADER + n);
            ToSqlOutput::Owned(Value::Blob(out))
        }
        // Incompressible, or so repetitive that a reader could not tell
        // it from a forged claim: as text.
        _ => ToSqlOutput::Borrowed(ValueRef::Text(bytes)),
    }
}

/// A stored body as the session wrote it. A body that does not unpack
/// becomes a text saying so, which no hash of the chain matches.
pub(super) fn unpack(stored: ValueRef<'_>) -> String {
    match stored {
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => unpacked(b).unwrap_or_else(|why| format!("(unreadable body: {why})")),
        // Not a body the store writes: shown, never trusted.
        ValueRef::Null => "(unreadable body: null)".to_owned(),
        ValueRef::Integer(i) => format!("(unreadable body: the number {i})"),
        ValueRef::Real(r) => format!("(unreadable body: the number {r})"),
    }
}

fn unpacked(b: &[u8]) -> Result<String, &'static str> {
    let (&form, rest) = b.split_first().ok_or("empty")?;
    if form != LZ4 {
        return Err("an unknown form");
    }
    let (len, block) = rest.split_at_checked(4).ok_or("cut short")?;
    let len = u32::from_le_bytes(len.try_into().map_err(|_| "cut short")?) as usize;
    // No body the writer packs claims more (see MOST_SHRUNK): a claim
    // beyond that is a lie, and is not allocated.
    if len > LONGEST || len > block.len().saturating_mul(MOST_SHRUNK) {
        return Err("a length its bytes cannot hold");
    }
    let mut out = vec![0; len];
    match lz4_flex::block::decompress_into(block, &mut out) {
        Ok(n) if n == len => String::from_utf8(out).map_err(|_| "not UTF-8"),
        Ok(_) => Err("a length its bytes do not hold"),
        Err(_) => Err("not an LZ4 block"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(out: &ToSqlOutput<'_>) -> Vec<u8> {
        match out {
            ToSqlOutput::Borrowed(ValueRef::Text(t)) => t.to_vec(),
            ToSqlOutput::Owned(Value::Blob(b)) => b.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn round(body: &str) -> String {
        match pack(body) {
            ToSqlOutput::Borrowed(v) => unpack(v),
            ToSqlOutput::Owned(Value::Blob(b)) => unpack(ValueRef::Blob(&b)),
            other => panic!("{other:?}"),
        }
    }

    /// A group's record of repeated reads, as a busy session writes it.
    fn reads(n: usize) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "statement\t+{}\t{{\"d\":2,\"literals\":[\"{}\"]}}\noutcome\t+{}\t{{\"tag\":\"SELECT 1\",\"rows\":1,\"bytes\":66,\"result\":{{\"columns\":[\"abalance\"],\"rows\":[[\"{}\"]]}}}}\n",
                    500 + i * 7 % 300,
                    (i * 7919) % 1_000_000,
                    200 + i % 90,
                    i % 5
                )
            })
            .collect()
    }

    #[test]
    fn a_busy_sessions_record_is_stored_in_a_fraction_of_its_bytes_and_reads_back_whole() {
        let body = reads(300);
        let packed = stored(&pack(&body));
        assert_eq!(packed[0], LZ4);
        assert!(
            packed.len() * 3 < body.len(),
            "{} of {}",
            packed.len(),
            body.len()
        );
        assert_eq!(round(&body), body);
    }

    #[test]
    fn short_or_incompressible_bodies_stay_text() {
        let short = "{\"reason\":\"closed\"}";
        assert_eq!(stored(&pack(short)), short.as_bytes());
        // Random hex does not shrink by the header's five bytes... often:
        // whatever is stored reads back.
        let noise: String = (0..2000)
            .map(|_| char::from(b'!' + rand::random::<u8>() % 90))
            .collect();
        assert_eq!(round(&noise), noise);
        assert_eq!(round(short), short);
        // So repetitive that LZ4 would shrink it more than MOST_SHRUNK-fold.
        let repeated = "a".repeat(64 << 10);
        assert_eq!(stored(&pack(&repeated)), repeated.as_bytes());
        assert_eq!(round(&repeated), repeated);
    }

    /// A genuine LZ4 block of a body far more repetitive than any the
    /// writer packs (a forged row: 1 KiB on disk for 255 KiB read) is not
    /// believed and not allocated.
    #[test]
    fn a_block_claiming_more_than_the_writer_ever_packs_is_not_unpacked() {
        let body = "a".repeat(255 << 10);
        let block = lz4_flex::block::compress(body.as_bytes());
        assert!(block.len() * MOST_SHRUNK < body.len());
        let forged = [&[LZ4][..], &(body.len() as u32).to_le_bytes(), &block].concat();
        assert_eq!(
            unpack(ValueRef::Blob(&forged)),
            "(unreadable body: a length its bytes cannot hold)"
        );
    }

    #[test]
    fn any_body_reads_back_as_it_was_written() {
        for n in [0, 1, 2, 3, 10, 60, 61, 300] {
            let body = reads(n);
            assert_eq!(round(&body), body, "{n} reads");
        }
        // Multi-byte text, and bodies around the threshold.
        for len in [SHORTEST - 1, SHORTEST, SHORTEST + 1, 4096] {
            let body: String = "héllo wörld ✓ ".chars().cycle().take(len).collect();
            assert_eq!(round(&body), body);
        }
    }

    /// Whatever bytes a blob holds (edited, cut, forged), reading it gives
    /// a text and never a panic or an allocation the bytes choose; a cut
    /// or a forged length never reads as a body.
    #[test]
    fn a_damaged_or_forged_body_reads_as_unreadable_never_a_panic() {
        let body = reads(50);
        let good = stored(&pack(&body));
        for i in 0..good.len() {
            // An edited byte: some text (a different one breaks the chain).
            let mut one = good.clone();
            one[i] ^= 0x5a;
            let _ = unpack(ValueRef::Blob(&one));
            // A cut tail.
            let cut = unpack(ValueRef::Blob(&good[..i]));
            assert!(cut.starts_with("(unreadable body: "), "{i}: {cut}");
        }
        for _ in 0..5000 {
            let len = usize::from(rand::random::<u8>() % 64);
            let mut b: Vec<u8> = (0..len).map(|_| rand::random()).collect();
            if let Some(f) = b.first_mut() {
                *f = LZ4;
            }
            let _ = unpack(ValueRef::Blob(&b));
        }
        // A length claim of 4 GiB over two bytes, an unknown form.
        assert_eq!(
            unpack(ValueRef::Blob(&[LZ4, 0xff, 0xff, 0xff, 0xff, 0x10, b'a'])),
            "(unreadable body: a length its bytes cannot hold)"
        );
        assert_eq!(
            unpack(ValueRef::Blob(&[7, 1, 0, 0, 0, 0x10, b'a'])),
            "(unreadable body: an unknown form)"
        );
    }

    /// Through the recorder: a busy session's record is stored packed,
    /// reads back whole, verifies untouched, and an edit inside the
    /// packed bytes is found as an edited record.
    #[test]
    fn an_edit_inside_a_packed_record_breaks_the_chain() {
        use crate::store::chain::tests::{start, statement};
        use crate::store::chain::{verify, Break};
        use crate::store::sqlite::SqliteStore;
        use crate::store::writer::{OnFailure, Recorder};
        use crate::store::Store;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let rec = Recorder::start(
            Box::new(SqliteStore::open(&path).unwrap()),
            std::time::Duration::from_millis(5),
            OnFailure::Refuse,
            "test",
            None,
            None,
        )
        .unwrap();
        let mut s = rec.session(&start("ann"));
        for i in 0..40 {
            let text = match i {
                7 => "SELECT 'zebra-unique-marker'".to_owned(),
                _ => format!("SELECT abalance FROM accounts WHERE aid = {}", i * 7919),
            };
            s.statement(&statement(&text));
        }
        s.end("closed");
        let id = s.id().to_owned();
        drop(s);
        rec.flush();
        drop(rec);

        let mut store = SqliteStore::open(&path).unwrap();
        let packed: Vec<Vec<u8>> = store
            .connection()
            .prepare("SELECT body FROM records WHERE typeof(body) = 'blob'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let marker = b"zebra-unique-marker";
        let at = packed
            .iter()
            .find_map(|b| b.windows(marker.len()).position(|w| w == marker))
            .expect("a packed record holds the marker as a literal");
        let events = crate::store::events(&store.rows(&id).unwrap());
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == crate::store::Kind::Statement)
                .count(),
            40
        );
        assert_eq!(verify(&mut store, None).unwrap().broken, None);

        // One letter of the marker, edited inside the packed bytes.
        store
            .connection()
            .execute(
                "UPDATE records SET body = CAST(substr(body, 1, ?1) || 'X' || substr(body, ?1 + 2) AS BLOB) \
                 WHERE typeof(body) = 'blob' AND instr(body, CAST('zebra-unique-marker' AS BLOB)) > 0",
                // The marker's ninth byte ('i'), 0-based `at + 8`.
                [at as i64 + 8],
            )
            .unwrap();
        let broken = verify(&mut store, None).unwrap().broken.expect("found");
        assert_eq!(broken.what, Break::Edited);
        assert!(store
            .rows(&id)
            .unwrap()
            .iter()
            .any(|r| r.body.contains("zebra-unXque-marker")));
    }
}
