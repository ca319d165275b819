//! The compressed protocol on the client leg (`CLIENT_COMPRESS`: `mariadb
//! --compress`, `compress=True` in drivers): after authentication every
//! byte each way travels in compressed packets — a 7-byte header (length
//! of the payload as sent, a sequence id, the length before compression,
//! 0 when the payload is not compressed) and a zlib payload. The relay
//! reads and writes plain packets through [`Compressed`], an I/O adapter;
//! the server leg stays uncompressed (same host or network, where zlib
//! costs more CPU than it saves).
//!
//! It must never inflate a payload past the length its header declares
//! (a small packet must not become a large allocation), nor hold more
//! than one packet of each kind at a time.

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Header of a compressed packet.
const HEADER: usize = 7;
/// Largest payload of one compressed packet (both lengths are 3 bytes).
const MAX_PAYLOAD: usize = (1 << 24) - 1;
/// Payloads shorter than this are sent uncompressed (what servers do).
const MIN_COMPRESS: usize = 50;

/// An I/O object speaking the compressed protocol underneath.
pub struct Compressed<T> {
    inner: T,
    /// Compressed bytes read and not yet unpacked.
    raw: BytesMut,
    /// Unpacked bytes for the reader.
    plain: BytesMut,
    /// Plain bytes written and not yet packed.
    pending: Vec<u8>,
    /// Packed bytes not yet written.
    out: BytesMut,
    /// The next compressed sequence id (each packet read sets it).
    seq: u8,
}

impl<T> Compressed<T> {
    /// `inner` in compressed mode; `buffered`: compressed bytes already
    /// read from it.
    pub fn new(inner: T, buffered: BytesMut) -> Self {
        Compressed {
            inner,
            raw: buffered,
            plain: BytesMut::new(),
            pending: Vec::new(),
            out: BytesMut::new(),
            seq: 0,
        }
    }

    /// Unpacks every whole compressed packet in `raw`.
    fn unpack(&mut self) -> std::io::Result<()> {
        while self.raw.len() >= HEADER {
            let len = u32::from_le_bytes([self.raw[0], self.raw[1], self.raw[2], 0]) as usize;
            let seq = self.raw[3];
            let plain_len = u32::from_le_bytes([self.raw[4], self.raw[5], self.raw[6], 0]) as usize;
            if self.raw.len() < HEADER + len {
                self.raw.reserve(HEADER + len - self.raw.len());
                return Ok(());
            }
            let payload = &self.raw[HEADER..HEADER + len];
            if plain_len == 0 {
                self.plain.extend_from_slice(payload);
            } else {
                let start = self.plain.len();
                self.plain.resize(start + plain_len, 0);
                let mut z = flate2::read::ZlibDecoder::new(payload);
                let filled = z.read_exact(&mut self.plain[start..]).and_then(|()| {
                    // Nothing past the declared length.
                    let mut probe = [0u8; 1];
                    match z.read(&mut probe)? {
                        0 => Ok(()),
                        _ => Err(std::io::ErrorKind::InvalidData.into()),
                    }
                });
                if filled.is_err() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a compressed packet does not inflate to its declared length",
                    ));
                }
            }
            self.seq = seq.wrapping_add(1);
            self.raw.advance(HEADER + len);
        }
        Ok(())
    }

    /// Packs the plain bytes written so far into compressed packets.
    fn pack(&mut self) -> std::io::Result<()> {
        for chunk in self.pending.chunks(MAX_PAYLOAD) {
            let at = self.out.len();
            self.out.extend_from_slice(&[0; HEADER]);
            let (len, plain_len) = if chunk.len() < MIN_COMPRESS {
                self.out.extend_from_slice(chunk);
                (chunk.len(), 0)
            } else {
                let mut z =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                z.write_all(chunk)?;
                let packed = z.finish()?;
                if packed.len() > MAX_PAYLOAD {
                    self.out.extend_from_slice(chunk);
                    (chunk.len(), 0)
                } else {
                    self.out.extend_from_slice(&packed);
                    (packed.len(), chunk.len())
                }
            };
            self.out[at..at + 3].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
            self.out[at + 3] = self.seq;
            self.out[at + 4..at + 7].copy_from_slice(&(plain_len as u32).to_le_bytes()[..3]);
            self.seq = self.seq.wrapping_add(1);
        }
        self.pending.clear();
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Compressed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.remaining());
                buf.put_slice(&this.plain[..n]);
                this.plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            this.unpack()?;
            if !this.plain.is_empty() {
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                // End of stream (a cut packet is the relay's to notice).
                return Poll::Ready(Ok(()));
            }
            this.raw.extend_from_slice(rb.filled());
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Compressed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        // Large writes are packed as they come, so at most one packet's
        // worth waits here.
        if self.pending.len() >= MAX_PAYLOAD {
            ready!(self.as_mut().poll_flush(cx))?;
        }
        let room = MAX_PAYLOAD - self.pending.len().min(MAX_PAYLOAD);
        let n = data.len().min(room.max(1));
        self.pending.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            this.pack()?;
        }
        while !this.out.is_empty() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.out))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            this.out.advance(n);
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn packets_round_trip_compressed_and_not() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut a = Compressed::new(a, BytesMut::new());
        let mut b = Compressed::new(b, BytesMut::new());
        let big = vec![7u8; 200_000];
        a.write_all(b"hi").await.unwrap();
        a.write_all(&big).await.unwrap();
        a.flush().await.unwrap();
        let mut got = vec![0u8; 2 + big.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..2], b"hi");
        assert_eq!(&got[2..], &big[..]);
        // The reply continues the sequence.
        b.write_all(b"ok").await.unwrap();
        b.flush().await.unwrap();
        let mut ok = [0u8; 2];
        a.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"ok");
    }

    #[tokio::test]
    async fn a_payload_that_inflates_past_its_length_is_refused() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&[0u8; 10_000]).unwrap();
        let packed = z.finish().unwrap();
        let mut frame = Vec::new();
        frame.extend_from_slice(&(packed.len() as u32).to_le_bytes()[..3]);
        frame.push(0);
        frame.extend_from_slice(&100u32.to_le_bytes()[..3]);
        frame.extend_from_slice(&packed);
        a.write_all(&frame).await.unwrap();
        let mut b = Compressed::new(b, BytesMut::new());
        let mut got = [0u8; 10];
        assert!(b.read(&mut got).await.is_err());
    }
}
