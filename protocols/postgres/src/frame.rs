//! Message framing: where one PostgreSQL message ends and the next begins.
//!
//! The relay forwards bytes as it receives them and only needs to know the
//! boundaries (type byte + big-endian length that counts itself) and, for
//! the few messages it inspects, the whole body. This module never decodes
//! a body: that is `messages/`'s job. Lengths are checked before any memory
//! is reserved, so a hostile length cannot make the gateway allocate.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::ProtocolError;

/// Size of a tagged message header: type byte + 4-byte length.
pub const HEADER_LEN: usize = 5;

/// The longest startup-phase packet (StartupMessage, SSLRequest,
/// CancelRequest) we accept; PostgreSQL itself uses 10000.
pub const MAX_STARTUP_LEN: usize = 10_000;

/// One complete message: its type byte and its body (without the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message type byte.
    pub tag: u8,
    /// The body, without type byte and length.
    pub body: Bytes,
}

/// The header of the message that starts at the front of `buf`, if the
/// header is complete: `(tag, total length including the type byte)`.
///
/// A length below 4 or above `max_len` is a protocol violation.
pub fn peek_header(buf: &[u8], max_len: usize) -> Result<Option<(u8, usize)>, ProtocolError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len < 4 {
        return Err(ProtocolError::BadLength { tag: buf[0], len });
    }
    if len > max_len {
        return Err(ProtocolError::TooLong {
            tag: buf[0],
            len,
            max: max_len,
        });
    }
    Ok(Some((buf[0], len + 1)))
}

/// Reads whole messages from a stream into a reused buffer.
///
/// Used where the gateway talks the protocol itself (handshakes, resets);
/// the relay scans its buffer with [`peek_header`] instead, so that large
/// messages it does not inspect stream through without being buffered.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    max_len: usize,
}

impl FrameReader {
    /// A reader that refuses messages longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        FrameReader {
            buf: BytesMut::with_capacity(8 * 1024),
            max_len,
        }
    }

    /// Takes the buffered bytes (to hand them to the relay).
    pub fn take_buffered(&mut self) -> BytesMut {
        self.buf.split()
    }

    /// The next complete frame already in the buffer, if any.
    pub fn try_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        match peek_header(&self.buf, self.max_len)? {
            Some((tag, total)) if self.buf.len() >= total => {
                let mut msg = self.buf.split_to(total);
                msg.advance(HEADER_LEN);
                Ok(Some(Frame {
                    tag,
                    body: msg.freeze(),
                }))
            }
            Some((_, total)) => {
                self.buf.reserve(total - self.buf.len());
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Reads the next frame; `Ok(None)` on a clean end of stream between
    /// messages.
    pub async fn read_frame<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
    ) -> Result<Option<Frame>, ProtocolError> {
        loop {
            if let Some(frame) = self.try_frame()? {
                return Ok(Some(frame));
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(ProtocolError::Truncated);
            }
        }
    }

    /// Reads one untagged startup-phase packet (length + payload) and
    /// returns its payload. Reads no byte past the packet, so that a TLS
    /// handshake can follow an SSLRequest on the same stream.
    pub async fn read_startup<R: AsyncRead + Unpin>(
        &mut self,
        stream: &mut R,
    ) -> Result<Option<Bytes>, ProtocolError> {
        let mut len_bytes = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            let n = stream.read(&mut len_bytes[got..]).await?;
            if n == 0 {
                return if got == 0 {
                    Ok(None)
                } else {
                    Err(ProtocolError::Truncated)
                };
            }
            got += n;
        }
        let len = u32::from_be_bytes(len_bytes) as usize;
        if !(8..=MAX_STARTUP_LEN).contains(&len) {
            return Err(ProtocolError::BadStartupLength(len));
        }
        let mut payload = vec![0u8; len - 4];
        stream
            .read_exact(&mut payload)
            .await
            .map_err(|_| ProtocolError::Truncated)?;
        Ok(Some(Bytes::from(payload)))
    }
}

/// Moves `pos` over what is left of a message being passed through
/// (`skip` bytes of it, of which `buf_len - pos` are here). True while the
/// message goes on past the buffer.
pub fn pass_over(skip: &mut usize, pos: &mut usize, buf_len: usize) -> bool {
    let n = (*skip).min(buf_len - *pos);
    *pos += n;
    *skip -= n;
    *skip > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn header_needs_five_bytes() {
        let m = msg(b'Q', b"select 1\0");
        for cut in 0..HEADER_LEN {
            assert_eq!(peek_header(&m[..cut], 100).unwrap(), None);
        }
        assert_eq!(peek_header(&m, 100).unwrap(), Some((b'Q', m.len())));
    }

    #[test]
    fn hostile_lengths_are_refused() {
        assert!(peek_header(&[b'Q', 0, 0, 0, 3], 100).is_err());
        assert!(peek_header(&[b'Q', 0xff, 0xff, 0xff, 0xff], 1 << 20).is_err());
    }

    #[tokio::test]
    async fn frames_survive_every_split_point() {
        let mut all = msg(b'Q', b"select 1\0");
        all.extend(msg(b'S', b""));
        all.extend(msg(b'd', &[7u8; 300]));
        for split in 0..all.len() {
            let (a, b) = all.split_at(split);
            let mut stream = tokio_test_reader(a, b);
            let mut r = FrameReader::new(1 << 20);
            let f1 = r.read_frame(&mut stream).await.unwrap().unwrap();
            assert_eq!((f1.tag, &f1.body[..]), (b'Q', &b"select 1\0"[..]));
            let f2 = r.read_frame(&mut stream).await.unwrap().unwrap();
            assert_eq!((f2.tag, f2.body.len()), (b'S', 0));
            let f3 = r.read_frame(&mut stream).await.unwrap().unwrap();
            assert_eq!((f3.tag, f3.body.len()), (b'd', 300));
            assert_eq!(r.read_frame(&mut stream).await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn truncated_stream_is_an_error() {
        let all = msg(b'Q', b"select 1\0");
        let mut stream = tokio_test_reader(&all[..7], &[]);
        let mut r = FrameReader::new(1 << 20);
        assert!(matches!(
            r.read_frame(&mut stream).await,
            Err(ProtocolError::Truncated)
        ));
    }

    /// A reader that yields `a` and then `b` as two separate reads.
    fn tokio_test_reader(a: &[u8], b: &[u8]) -> impl AsyncRead + Unpin {
        let mut builder = tokio_test_builder();
        if !a.is_empty() {
            builder.read(a);
        }
        if !b.is_empty() {
            builder.read(b);
        }
        builder.build()
    }

    fn tokio_test_builder() -> tokio_test::io::Builder {
        tokio_test::io::Builder::new()
    }
}
