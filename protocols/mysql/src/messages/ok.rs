//! OK and EOF packets: built for the gateway's own answers, and read for
//! the status flags that say whether more results follow.

use super::{lenenc_int, put_lenenc_int};

/// SERVER_STATUS_AUTOCOMMIT.
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;
/// SERVER_MORE_RESULTS_EXISTS.
pub const STATUS_MORE_RESULTS: u16 = 0x0008;
/// SERVER_STATUS_CURSOR_EXISTS.
pub const STATUS_CURSOR_EXISTS: u16 = 0x0040;
/// SERVER_STATUS_IN_TRANS.
pub const STATUS_IN_TRANS: u16 = 0x0001;

/// An OK payload with no rows affected.
pub fn payload(status: u16) -> Vec<u8> {
    let mut p = vec![0x00];
    put_lenenc_int(0, &mut p);
    put_lenenc_int(0, &mut p);
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p
}

/// Status flags of an OK packet (header 0x00, or 0xFE as a terminator
/// with CLIENT_DEPRECATE_EOF).
pub fn ok_status(payload: &[u8]) -> Option<u16> {
    let mut pos = 1;
    let (_, n) = lenenc_int(payload.get(pos..)?)?;
    pos += n;
    let (_, n) = lenenc_int(payload.get(pos..)?)?;
    pos += n;
    Some(u16::from_le_bytes([
        *payload.get(pos)?,
        *payload.get(pos + 1)?,
    ]))
}

/// Status flags of a classic EOF packet (0xFE, warnings, status).
pub fn eof_status(payload: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes([*payload.get(3)?, *payload.get(4)?]))
}

/// Status flags of a terminator: an EOF packet (< 9 bytes) or an OK packet.
pub fn terminator_status(payload: &[u8]) -> Option<u16> {
    if payload.first() == Some(&0xfe) && payload.len() < 9 {
        eof_status(payload)
    } else {
        ok_status(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(
            ok_status(&payload(STATUS_MORE_RESULTS)),
            Some(STATUS_MORE_RESULTS)
        );
        assert_eq!(terminator_status(&[0xfe, 0, 0, 0x0a, 0]), Some(0x0a));
        assert_eq!(ok_status(&[0x00, 0xfc]), None);
    }
}
