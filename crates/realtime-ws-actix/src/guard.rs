//! A guard on the bytes a client sends, before actix-ws buffers them.
//!
//! actix-http checks a frame's length against the limit only once the whole frame has
//! arrived, and actix-ws buffers it meanwhile: a header that declares a terabyte, followed by
//! a slow trickle, would grow the server's memory without end. This guard reads the frame
//! headers as the bytes pass and ends the stream at the first frame over the read limit (or a
//! control frame over 125 bytes, or a message in too many fragments), so what actix-ws buffers
//! stays within one legal frame.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use actix_http::error::PayloadError;
use bytes::Bytes;
use futures_core::Stream;

/// Fragments one message may arrive in at most (browsers send one).
const MAX_FRAGMENTS: u32 = 128;

/// The stream of a client's bytes, ended with [`PayloadError::Overflow`] at the first frame
/// the read limit refuses; `tripped` is then set (that error means 1009, not a hang-up).
pub(crate) struct FrameGuard<S> {
    inner: S,
    limit: u64,
    header: [u8; 14],
    have: usize,
    need: usize,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    fragments: u32,
    tripped: Arc<AtomicBool>,
}

impl<S> FrameGuard<S> {
    pub(crate) fn new(inner: S, limit: usize, tripped: Arc<AtomicBool>) -> Self {
        FrameGuard {
            inner,
            limit: limit as u64,
            header: [0; 14],
            have: 0,
            need: 2,
            remaining: 0,
            fragments: 0,
            tripped,
        }
    }

    /// Follows the frames in `bytes`; `false` at the first one over a limit.
    fn check(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(bytes.len() as u64) as usize;
                self.remaining -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (self.need - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < self.need {
                continue;
            }
            if self.need == 2 {
                let short = self.header[1] & 0x7f;
                let extended = match short {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
                self.need = 2 + extended + mask;
                if self.need > 2 {
                    continue;
                }
            }
            if !self.frame_allowed() {
                return false;
            }
            self.have = 0;
            self.need = 2;
        }
        true
    }

    /// The header is complete: its length and fragmenting within the limits?
    fn frame_allowed(&mut self) -> bool {
        let length = match self.header[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap_or([0xff; 8])),
            short => u64::from(short),
        };
        let fin = self.header[0] & 0x80 != 0;
        let opcode = self.header[0] & 0x0f;
        let allowed = if opcode >= 8 {
            length <= 125
        } else {
            if opcode == 0 || !fin {
                self.fragments += 1;
            }
            let within = length <= self.limit && self.fragments <= MAX_FRAGMENTS;
            if fin {
                self.fragments = 0;
            }
            within
        };
        self.remaining = length;
        allowed
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.tripped.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if self.check(&bytes) {
                    Poll::Ready(Some(Ok(bytes)))
                } else {
                    self.tripped.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(limit: usize) -> FrameGuard<futures_util::stream::Empty<Result<Bytes, PayloadError>>> {
        FrameGuard::new(futures_util::stream::empty(), limit, Arc::default())
    }

    #[test]
    fn frames_within_the_limit_pass_split_anywhere() {
        // A masked 5-byte text frame, a masked ping, a 300-byte frame (16-bit length).
        let mut bytes = vec![0x81, 0x85, 1, 2, 3, 4, b'h', b'e', b'l', b'l', b'o'];
        bytes.extend([0x89, 0x80, 1, 2, 3, 4]);
        bytes.extend([0x82, 0xfe, 0x01, 0x2c, 1, 2, 3, 4]);
        bytes.extend(std::iter::repeat_n(0u8, 300));
        for split in 0..bytes.len() {
            let mut g = guard(1024);
            assert!(
                g.check(&bytes[..split]) && g.check(&bytes[split..]),
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_from_its_header() {
        let mut g = guard(1024);
        // A text frame declaring 2^40 bytes: refused before any payload arrives.
        let header = [0x81, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert!(!g.check(&header));
        let mut g = guard(1024);
        assert!(
            !g.check(&[0x89, 0xfe, 0x00, 0x7e, 1, 2, 3, 4]),
            "a 126-byte ping"
        );
    }

    #[test]
    fn a_message_in_too_many_fragments_is_refused() {
        let mut g = guard(1024);
        assert!(g.check(&[0x01, 0x81, 0, 0, 0, 0, b'a']), "first fragment");
        let mut allowed = true;
        for _ in 0..MAX_FRAGMENTS + 1 {
            allowed &= g.check(&[0x00, 0x81, 0, 0, 0, 0, b'a']);
        }
        assert!(!allowed);
    }
}
