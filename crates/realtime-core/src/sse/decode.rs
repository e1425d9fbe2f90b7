//! An incremental `text/event-stream` decoder, for tests, tools and Rust clients.

use bytes::{Buf, BytesMut};

/// One dispatched SSE frame (or a run of comments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// The `id:` field, if the frame had one.
    pub id: Option<String>,
    /// The `event:` field, if the frame had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`; `None` when the frame had no data line.
    pub data: Option<String>,
    /// The `retry:` field, if valid.
    pub retry: Option<u32>,
    /// Comment lines (`: text`), without the colon and the one leading space: the first
    /// [`MAX_COMMENTS`] of the frame (the rest are read and dropped).
    pub comments: Vec<String>,
}

/// Comment lines a [`Frame`] keeps. A run of short comment lines would otherwise cost a
/// `String` each — many times the bytes that carried them.
pub const MAX_COMMENTS: usize = 16;

/// Splits a byte stream into [`Frame`]s; feed it chunks as they arrive.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: BytesMut,
    frame: Frame,
    /// Whether the frame being built has any line yet.
    started: bool,
    /// A CR ended the last line; an LF right after it belongs to it.
    after_cr: bool,
    /// Bytes of the lines taken into the frame being built.
    held: usize,
    /// How much of `buffer` is known to hold no line end: a partial line arriving a byte at
    /// a time is scanned once, not once per chunk.
    scanned: usize,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held for frames not complete yet (a partial line, the lines of an unfinished
    /// frame): a client bounds its memory by checking this after each [`feed`](Self::feed).
    pub fn pending_bytes(&self) -> usize {
        self.buffer.len() + self.held
    }

    /// Adds `chunk` and returns the frames it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.buffer.extend_from_slice(chunk);
        let mut frames = Vec::new();
        loop {
            if self.after_cr {
                match self.buffer.first() {
                    // CRLF: the LF belongs to the line the CR ended.
                    Some(b'\n') => self.buffer.advance(1),
                    Some(_) => {}
                    // The LF may be in the next chunk: decide then.
                    None => return frames,
                }
                self.after_cr = false;
            }
            let from = self.scanned.min(self.buffer.len());
            let found = self.buffer[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r');
            let Some(end) = found.map(|i| from + i) else {
                self.scanned = self.buffer.len();
                return frames;
            };
            self.scanned = 0;
            self.after_cr = self.buffer[end] == b'\r';
            let line = self.buffer.split_to(end);
            self.buffer.advance(1);
            if let Some(frame) = self.line(&String::from_utf8_lossy(&line)) {
                frames.push(frame);
            }
        }
    }

    fn line(&mut self, line: &str) -> Option<Frame> {
        if line.is_empty() {
            self.started = false;
            self.held = 0;
            return Some(std::mem::take(&mut self.frame)).filter(|f| *f != Frame::default());
        }
        self.started = true;
        self.held += line.len() + 1;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "" if self.frame.comments.len() < MAX_COMMENTS => {
                self.frame.comments.push(value.to_owned());
            }
            "id" => self.frame.id = Some(value.to_owned()),
            "event" => self.frame.event = Some(value.to_owned()),
            "retry" => self.frame.retry = value.parse().ok(),
            "data" => match &mut self.frame.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.frame.data = Some(value.to_owned()),
            },
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::position::{Epoch, Position};

    #[test]
    fn a_run_of_comments_keeps_a_bounded_number() {
        let mut decoder = Decoder::new();
        let frames = decoder.feed(&b":\n".repeat(100_000));
        assert!(frames.is_empty());
        assert_eq!(
            decoder.pending_bytes(),
            200_000,
            "every byte is still counted"
        );
        let frames = decoder.feed(b"data: x\n\n");
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].comments.len(), MAX_COMMENTS);
        assert_eq!(frames[0].data.as_deref(), Some("x"));
    }

    #[test]
    fn crlf_streams_fed_a_byte_at_a_time_decode_as_whole() {
        let wire = b": hi\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\nid: 2\rdata: c\r\rdata: d\n\n";
        let whole = Decoder::new().feed(wire);
        assert_eq!(whole.len(), 3, "{whole:?}");
        assert_eq!(whole[0].data.as_deref(), Some("a\nb"));
        let mut decoder = Decoder::new();
        let mut trickled = Vec::new();
        for byte in wire {
            trickled.extend(decoder.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(trickled, whole);
        assert_eq!(decoder.pending_bytes(), 0);
    }

    #[test]
    fn decodes_what_the_encoder_writes_in_any_chunking() {
        let mut event = NewEvent::new("c", "a\nb\r\nc").into_event(Position::new(Epoch(0xa), 5));
        event.event_type = Some("t".into());
        event.retry_ms = Some(10);
        let mut wire = super::super::encode_comment("connected").to_vec();
        wire.extend_from_slice(&super::super::encode_event(&event));
        for split in 0..wire.len() {
            let mut decoder = Decoder::new();
            let mut frames = decoder.feed(&wire[..split]);
            frames.extend(decoder.feed(&wire[split..]));
            assert_eq!(frames.len(), 2, "split at {split}");
            assert_eq!(frames[0].comments, vec!["connected"]);
            let f = &frames[1];
            assert_eq!(
                (
                    f.id.as_deref(),
                    f.event.as_deref(),
                    f.data.as_deref(),
                    f.retry
                ),
                (Some("a-5"), Some("t"), Some("a\nb\nc"), Some(10))
            );
        }
    }
}
