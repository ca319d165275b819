//! Packet framing: a 3-byte little-endian payload length and a sequence id.
//! A payload of 16 MiB − 1 bytes or more is split into fragments of
//! exactly 0xFFFFFF bytes followed by a shorter one; together they are one
//! logical packet.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ProtocolError;

/// Header size.
pub const HEADER_LEN: usize = 4;
/// Payload length of a fragment that is continued by the next one.
pub const MAX_FRAGMENT: usize = 0xFF_FFFF;

/// `(payload length, sequence id)` of the fragment at the front of `buf`.
pub fn header(buf: &[u8]) -> Option<(usize, u8)> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let len = buf[0] as usize | (buf[1] as usize) << 8 | (buf[2] as usize) << 16;
    Some((len, buf[3]))
}

/// Appends `payload` as one logical packet starting at sequence `seq`;
/// returns the next sequence id.
pub fn encode(mut seq: u8, payload: &[u8], out: &mut Vec<u8>) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_FRAGMENT);
        out.extend_from_slice(&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq]);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_FRAGMENT {
            return seq;
        }
    }
}

/// Reads whole logical packets (joining fragments) from a stream, for the
/// parts of the protocol the gateway speaks itself (handshakes, resets).
#[derive(Debug, Default)]
pub struct PacketReader {
    buf: BytesMut,
}

impl PacketReader {
    /// Bytes read but not yet returned.
    pub fn take_buffered(&mut self) -> BytesMut {
        self.buf.split()
    }

    /// Whether bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Reads one logical packet of at most `max` bytes: `(seq of the last
    /// fragment, payload)`. `Ok(None)` on a clean end of stream.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
        max: usize,
    ) -> Result<Option<(u8, Vec<u8>)>, ProtocolError> {
        let mut payload = Vec::new();
        loop {
            while header(&self.buf).is_none_or(|(len, _)| self.buf.len() < HEADER_LEN + len) {
                if let Some((len, _)) = header(&self.buf) {
                    if payload.len() + len > max {
                        return Err(ProtocolError::TooLong {
                            len: payload.len() + len,
                            max,
                        });
                    }
                }
                if stream.read_buf(&mut self.buf).await? == 0 {
                    return if self.buf.is_empty() && payload.is_empty() {
                        Ok(None)
                    } else {
                        Err(ProtocolError::Truncated)
                    };
                }
            }
            let (len, seq) = header(&self.buf).ok_or(ProtocolError::Truncated)?;
            self.buf.advance(HEADER_LEN);
            payload.extend_from_slice(&self.buf[..len]);
            self.buf.advance(len);
            if len < MAX_FRAGMENT {
                return Ok(Some((seq, payload)));
            }
        }
    }
}

/// Writes one logical packet and flushes.
pub async fn write<W: AsyncWrite + Unpin>(
    stream: &mut W,
    seq: u8,
    payload: &[u8],
) -> std::io::Result<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN);
    let next = encode(seq, payload, &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn big_payloads_split_and_join() {
        for size in [
            0,
            1,
            MAX_FRAGMENT - 1,
            MAX_FRAGMENT,
            MAX_FRAGMENT + 1,
            2 * MAX_FRAGMENT + 5,
        ] {
            let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut wire = Vec::new();
            let next = encode(3, &payload, &mut wire);
            assert_eq!(next as usize, 3 + size / MAX_FRAGMENT + 1, "{size}");
            let mut r = PacketReader::default();
            let mut stream = &wire[..];
            let (seq, got) = r.read(&mut stream, usize::MAX).await.unwrap().unwrap();
            assert_eq!(seq, next - 1);
            assert!(got == payload, "{size}");
            assert!(r.read(&mut stream, usize::MAX).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn limits_and_truncation() {
        let mut wire = Vec::new();
        encode(0, &[1; 100], &mut wire);
        let mut r = PacketReader::default();
        assert!(matches!(
            r.read(&mut &wire[..], 10).await,
            Err(ProtocolError::TooLong { .. })
        ));
        let mut r = PacketReader::default();
        assert!(matches!(
            r.read(&mut &wire[..50], 1000).await,
            Err(ProtocolError::Truncated)
        ));
    }
}
