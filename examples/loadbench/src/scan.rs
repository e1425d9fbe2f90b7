//! Allocation-free scanners for what subscribers read: an SSE stream inside HTTP/1.1 chunked
//! encoding, and server-to-client WebSocket frames. The load generator must cost less per
//! delivery than the servers it measures, so it parses in place instead of building frames.

/// Where the chunked-transfer decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hexadecimal size line.
    Size(usize),
    /// Skipping a chunk extension up to the end of the size line.
    Extension(usize),
    /// Inside chunk data, with this many bytes left.
    Data(usize),
    /// Skipping the CRLF after chunk data.
    AfterData,
    /// The last chunk arrived: the stream is over.
    Done,
}

/// Scans `text/event-stream` bytes (optionally chunked) and reports each event's data.
#[derive(Debug)]
pub struct SseScanner {
    chunk: Option<Chunk>,
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    last_id: Vec<u8>,
}

impl SseScanner {
    /// A scanner for a body sent with `Transfer-Encoding: chunked` (or not).
    pub fn new(chunked: bool) -> Self {
        SseScanner {
            chunk: chunked.then_some(Chunk::Size(0)),
            line: Vec::with_capacity(256),
            data: Vec::with_capacity(256),
            has_data: false,
            last_id: Vec::new(),
        }
    }

    /// The last `id:` seen, for `Last-Event-ID` on reconnection.
    pub fn last_id(&self) -> Option<&[u8]> {
        (!self.last_id.is_empty()).then_some(self.last_id.as_slice())
    }

    /// Feeds body bytes, calling `on_event` with each complete event's data. Returns false once
    /// the chunked body has ended.
    pub fn feed(&mut self, mut bytes: &[u8], on_event: &mut impl FnMut(&[u8])) -> bool {
        let Some(mut state) = self.chunk else {
            self.scan(bytes, on_event);
            return true;
        };
        while !bytes.is_empty() {
            state = match state {
                Chunk::Data(left) => {
                    let take = left.min(bytes.len());
                    self.scan(&bytes[..take], on_event);
                    bytes = &bytes[take..];
                    if take == left {
                        Chunk::AfterData
                    } else {
                        Chunk::Data(left - take)
                    }
                }
                Chunk::Done => break,
                other => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    match (other, byte) {
                        (Chunk::AfterData, b'\n') => Chunk::Size(0),
                        (Chunk::Size(0), b'\n') => Chunk::Done,
                        (Chunk::Size(size) | Chunk::Extension(size), b'\n') => Chunk::Data(size),
                        (Chunk::Size(size), b';') => Chunk::Extension(size),
                        (Chunk::Size(size), digit) if digit.is_ascii_hexdigit() => {
                            let value = (digit as char).to_digit(16).unwrap_or(0) as usize;
                            Chunk::Size(size.saturating_mul(16).saturating_add(value))
                        }
                        (state, _) => state,
                    }
                }
            };
        }
        self.chunk = Some(state);
        state != Chunk::Done
    }

    fn scan(&mut self, mut bytes: &[u8], on_event: &mut impl FnMut(&[u8])) {
        while let Some(end) = memchr::memchr(b'\n', bytes) {
            if self.line.is_empty() {
                self.line_complete(&bytes[..end], on_event);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..end]);
                self.line_complete(&line, on_event);
                line.clear();
                self.line = line;
            }
            bytes = &bytes[end + 1..];
        }
        self.line.extend_from_slice(bytes);
    }

    fn line_complete(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(&self.data);
            }
            self.data.clear();
            self.has_data = false;
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" => {
                self.last_id.clear();
                self.last_id.extend_from_slice(value);
            }
            _ => {}
        }
    }
}

/// A complete WebSocket message or control frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum WsFrame<'a> {
    /// A text (or binary) message.
    Message(&'a [u8]),
    /// A ping; the client answers with a pong carrying the same payload ([`client_frame`]).
    Ping(&'a [u8]),
    /// A close frame.
    Close,
}

/// Scans unmasked server-to-client WebSocket frames, reassembling fragmented messages.
#[derive(Debug, Default)]
pub struct WsScanner {
    pending: Vec<u8>,
    fragments: Vec<u8>,
}

impl WsScanner {
    /// Feeds socket bytes, calling `on_frame` for each message and control frame. Returns an
    /// error for a frame a server must not send (masked, or a length beyond 16 MiB).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        on_frame: &mut impl FnMut(WsFrame<'_>),
    ) -> Result<(), String> {
        if self.pending.is_empty() {
            let used = self.frames(bytes, on_frame)?;
            self.pending.extend_from_slice(&bytes[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(bytes);
            let used = self.frames(&pending, on_frame)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Handles the complete frames at the start of `bytes`; returns how many bytes they took.
    fn frames(
        &mut self,
        bytes: &[u8],
        on_frame: &mut impl FnMut(WsFrame<'_>),
    ) -> Result<usize, String> {
        let mut at = 0;
        while let Some((header, length)) = frame_header(&bytes[at..])? {
            let Some(payload) = bytes.get(at + header..at + header + length) else {
                break;
            };
            let (fin, opcode) = (bytes[at] & 0x80 != 0, bytes[at] & 0x0f);
            at += header + length;
            match opcode {
                0x8 => on_frame(WsFrame::Close),
                0x9 => on_frame(WsFrame::Ping(payload)),
                0x0..=0x2 if fin && self.fragments.is_empty() => {
                    on_frame(WsFrame::Message(payload))
                }
                0x0..=0x2 => {
                    self.fragments.extend_from_slice(payload);
                    if fin {
                        on_frame(WsFrame::Message(&self.fragments));
                        self.fragments.clear();
                    }
                }
                _ => {}
            }
        }
        Ok(at)
    }
}

/// The header length and payload length of the frame starting `bytes`, once both are known.
fn frame_header(bytes: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let [_, second, rest @ ..] = bytes else {
        return Ok(None);
    };
    if second & 0x80 != 0 {
        return Err("the server sent a masked frame".into());
    }
    let (header, length) = match second & 0x7f {
        126 => match rest {
            [a, b, ..] => (4, u16::from_be_bytes([*a, *b]) as usize),
            _ => return Ok(None),
        },
        127 => match rest.first_chunk::<8>() {
            Some(long) => (10, u64::from_be_bytes(*long) as usize),
            None => return Ok(None),
        },
        short => (2, short as usize),
    };
    if length > 16 << 20 {
        return Err(format!(
            "a {length}-byte frame is beyond this client's limit"
        ));
    }
    Ok(Some((header, length)))
}

/// A masked client frame (`0x1` text, `0xa` pong) of at most 64 KiB. The mask key is zero,
/// which RFC 6455 allows, so the payload goes out as is.
pub fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = &payload[..payload.len().min(u16::MAX as usize)];
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.push(0x80 | opcode);
    match u8::try_from(payload.len()) {
        Ok(short) if short < 126 => frame.push(0x80 | short),
        _ => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse_events(chunked: bool, pieces: &[&[u8]]) -> (Vec<String>, Option<String>) {
        let mut scanner = SseScanner::new(chunked);
        let mut events = Vec::new();
        for piece in pieces {
            scanner.feed(piece, &mut |data| {
                events.push(String::from_utf8_lossy(data).into_owned())
            });
        }
        let last = scanner
            .last_id()
            .map(|id| String::from_utf8_lossy(id).into_owned());
        (events, last)
    }

    #[test]
    fn sse_events_split_anywhere_in_chunks() {
        let body = b"id: a-1\ndata: one\n\n: comment\n\nid: a-2\ndata: two\ndata: lines\n\n";
        let mut chunked = Vec::new();
        for part in body.chunks(7) {
            chunked.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
            chunked.extend_from_slice(part);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let expected = (
            vec!["one".to_owned(), "two\nlines".to_owned()],
            Some("a-2".to_owned()),
        );
        for split in [1, 3, 5, 64] {
            let pieces: Vec<&[u8]> = chunked.chunks(split).collect();
            assert_eq!(sse_events(true, &pieces), expected, "split {split}");
        }
        assert_eq!(sse_events(false, &[body]), expected);
    }

    #[test]
    fn the_last_chunk_ends_the_body() {
        let mut scanner = SseScanner::new(true);
        assert!(scanner.feed(b"5\r\ndata:\r\n", &mut |_| {}));
        assert!(!scanner.feed(b"0\r\n\r\n", &mut |_| {}));
    }

    #[test]
    fn ws_frames_split_anywhere() {
        let mut stream = vec![0x81, 3];
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&[0x01, 2, b'd', b'e', 0x89, 1, b'p', 0x80, 1, b'f']);
        let long = vec![b'x'; 300];
        stream.extend_from_slice(&[0x81, 126, 1, 44]);
        stream.extend_from_slice(&long);
        stream.extend_from_slice(&[0x88, 0]);
        for split in [1, 2, 7, 1000] {
            let mut scanner = WsScanner::default();
            let mut seen = Vec::new();
            for piece in stream.chunks(split) {
                scanner
                    .feed(piece, &mut |frame| {
                        seen.push(match frame {
                            WsFrame::Message(m) => String::from_utf8_lossy(m).into_owned(),
                            WsFrame::Ping(p) => format!("ping {}", String::from_utf8_lossy(p)),
                            WsFrame::Close => "close".into(),
                        })
                    })
                    .unwrap();
            }
            let expected = ["abc", "ping p", "def", &"x".repeat(300), "close"];
            assert_eq!(seen, expected, "split {split}");
        }
    }

    #[test]
    fn masked_server_frames_are_refused() {
        let mut scanner = WsScanner::default();
        assert!(
            scanner
                .feed(&[0x81, 0x81, 0, 0, 0, 0, b'a'], &mut |_| {})
                .is_err()
        );
    }

    #[test]
    fn client_frames_are_masked_with_a_zero_key() {
        assert_eq!(
            client_frame(0xa, b"hi"),
            vec![0x8a, 0x82, 0, 0, 0, 0, b'h', b'i']
        );
        let long = client_frame(0x1, &[b'x'; 200]);
        assert_eq!(long[..8], [0x81, 0xfe, 0, 200, 0, 0, 0, 0]);
        assert_eq!(long.len(), 208);
    }
}
