//! The packets the gateway inspects or builds; everything else passes
//! through as framed bytes. Decoding of peer bytes is bounds-checked
//! everywhere (slices with `get`), never `unwrap` on wire data.

pub mod change_user;
pub mod command;
pub mod err;
pub mod ok;

/// Reads a length-encoded integer: `(value, bytes used)`.
pub fn lenenc_int(buf: &[u8]) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let take = |n: usize| -> Option<(u64, usize)> {
        let bytes = buf.get(1..1 + n)?;
        let mut v = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            v |= (*b as u64) << (8 * i);
        }
        Some((v, 1 + n))
    };
    match first {
        0xfc => take(2),
        0xfd => take(3),
        0xfe => take(8),
        0xfb | 0xff => None,
        v => Some((v as u64, 1)),
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(v: u64, out: &mut Vec<u8>) {
    match v {
        0..=250 => out.push(v as u8),
        251..=0xffff => {
            out.push(0xfc);
            out.extend_from_slice(&(v as u16).to_le_bytes());
        }
        0x1_0000..=0xff_ffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trip() {
        for v in [
            0,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc_int(v, &mut out);
            assert_eq!(lenenc_int(&out), Some((v, out.len())), "{v}");
            assert_eq!(
                lenenc_int(&out[..out.len() - 1]).filter(|_| out.len() > 1),
                None
            );
        }
    }
}
