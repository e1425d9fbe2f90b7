//! Server-Sent Events wire encoding.
//!
//! Frames follow the HTML living standard's `text/event-stream` format. Field values that must
//! be a single line (`id`, `event`) have CR and LF removed, so no value can end a frame early
//! or inject a field; `data` is split on every line break (CRLF, CR, LF) into one `data:` line
//! each, which the browser joins back with `\n`. Binary data ([`DataFormat::Binary`]) is sent
//! as standard base64 with padding (RFC 4648 §4) on one `data:` line: in a browser,
//! `Uint8Array.from(atob(e.data), c => c.charCodeAt(0))`. SSE has no field a browser exposes
//! to say which events those are: the application knows by the event type it publishes them
//! under. Text and JSON data are sent as they are.

mod decode;

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use crate::event::{DataFormat, Event};
use crate::gap::Gap;
use crate::position::Position;

pub use decode::{Decoder, Frame, MAX_COMMENTS};

/// The SSE event name of the gap signal. Application event types may not use the `realtime-`
/// prefix, so this cannot be spoofed by a publisher.
pub const GAP_EVENT: &str = "realtime-gap";

/// The `event:` name prefix reserved for realtime's own signals.
pub const RESERVED_TYPE_PREFIX: &str = "realtime-";

/// Encodes one event as a complete frame (ending in a blank line).
pub fn encode_event(event: &Event) -> Bytes {
    let type_len = event.event_type.as_ref().map_or(0, |t| t.len() + 8);
    let mut buf = BytesMut::with_capacity(48 + type_len + event.data.len() * 4 / 3);
    write_position(&mut buf, event.id);
    if let Some(kind) = &event.event_type {
        write_field(&mut buf, b"event", kind.as_bytes());
    }
    if let Some(retry) = event.retry_ms {
        // Writing into a BytesMut cannot fail.
        let _ = writeln!(buf, "retry: {retry}");
    }
    match event.format {
        DataFormat::Binary => write_base64(&mut buf, &event.data),
        _ => write_data(&mut buf, &event.data),
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

/// One `data:` line of `bytes` in standard base64, encoded in place.
fn write_base64(buf: &mut BytesMut, bytes: &[u8]) {
    use base64::Engine as _;
    buf.put_slice(b"data: ");
    let start = buf.len();
    let len = base64::encoded_len(bytes.len(), true).unwrap_or_default();
    buf.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut buf[start..])
        .unwrap_or_default();
    buf.truncate(start + written);
    buf.put_u8(b'\n');
}

/// Encodes the gap signal: `event: realtime-gap`, JSON data with `channel`, `reason` and
/// `head`, and `id:` set to the head, so a browser that reconnects resumes after the head
/// instead of asking for the lost range again.
pub fn encode_gap(gap: &Gap) -> Bytes {
    let json = gap.to_json();
    let mut buf = BytesMut::with_capacity(48 + json.len());
    write_position(&mut buf, gap.head);
    write_field(&mut buf, b"event", GAP_EVENT.as_bytes());
    write_data(&mut buf, &json);
    buf.put_u8(b'\n');
    buf.freeze()
}

/// Encodes a comment frame (`: text`), used for `: connected` and heartbeats. Line breaks in
/// `text` become separate comment lines.
pub fn encode_comment(text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text.len() + 4);
    for line in lines(text.as_bytes()) {
        buf.put_slice(b": ");
        buf.put_slice(line);
        buf.put_u8(b'\n');
    }
    buf.put_u8(b'\n');
    buf.freeze()
}

/// Encodes a stand-alone `retry:` frame setting the client's reconnection delay.
pub fn encode_retry(retry_ms: u32) -> Bytes {
    Bytes::from(format!("retry: {retry_ms}\n\n"))
}

/// `id: <token>` without building the token as a String first.
fn write_position(buf: &mut BytesMut, position: Position) {
    // Writing into a BytesMut cannot fail.
    let _ = writeln!(buf, "id: {position}");
}

fn write_field(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_slice(b": ");
    if value.iter().any(|&b| b == b'\r' || b == b'\n') {
        buf.extend(value.iter().copied().filter(|&b| b != b'\r' && b != b'\n'));
    } else {
        buf.put_slice(value);
    }
    buf.put_u8(b'\n');
}

fn write_data(buf: &mut BytesMut, data: &[u8]) {
    for line in lines(data) {
        buf.put_slice(b"data: ");
        buf.put_slice(line);
        buf.put_u8(b'\n');
    }
}

/// Splits on CRLF, CR and LF. An empty input is one empty line.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                rest = None;
                Some(current)
            }
            Some(i) => {
                let skip = if current[i] == b'\r' && current.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::gap::GapReason;
    use crate::position::Epoch;

    fn event(data: &str) -> Event {
        NewEvent::new("c", data.to_owned()).into_event(Position::new(Epoch(0xa), 5))
    }

    #[test]
    fn plain_event() {
        assert_eq!(
            &encode_event(&event("hello"))[..],
            b"id: a-5\ndata: hello\n\n"
        );
    }

    #[test]
    fn every_line_break_starts_a_data_line() {
        let frame = encode_event(&event("a\nb\r\nc\rd\n"));
        assert_eq!(
            &frame[..],
            b"id: a-5\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
    }

    #[test]
    fn type_and_retry_cannot_break_framing() {
        let mut e = event("x");
        e.event_type = Some("evil\n\ndata: injected\r".into());
        e.retry_ms = Some(2500);
        let frame = encode_event(&e);
        assert_eq!(
            &frame[..],
            b"id: a-5\nevent: evildata: injected\nretry: 2500\ndata: x\n\n"
        );
        assert_eq!(frame.windows(2).filter(|w| w == b"\n\n").count(), 1);
    }

    #[test]
    fn binary_data_is_one_line_of_base64_json_is_as_it_is() {
        let mut e = event("");
        e.data = Bytes::from_static(b"\n\n\xff\x00");
        e.format = DataFormat::Binary;
        assert_eq!(&encode_event(&e)[..], b"id: a-5\ndata: Cgr/AA==\n\n");
        let mut e = event("{\"a\":\n1}");
        e.format = DataFormat::Json;
        assert_eq!(
            &encode_event(&e)[..],
            b"id: a-5\ndata: {\"a\":\ndata: 1}\n\n"
        );
    }

    #[test]
    fn gap_frame() {
        let gap = Gap {
            channel: "c".into(),
            reason: GapReason::Trimmed,
            head: Position::new(Epoch(0xa), 9),
        };
        assert_eq!(
            &encode_gap(&gap)[..],
            &b"id: a-9\nevent: realtime-gap\ndata: {\"channel\":\"c\",\"reason\":\"trimmed\",\"head\":\"a-9\"}\n\n"[..]
        );
    }

    #[test]
    fn comments_and_retry() {
        assert_eq!(&encode_comment("connected")[..], b": connected\n\n");
        assert_eq!(&encode_comment("a\nb")[..], b": a\n: b\n\n");
        assert_eq!(&encode_retry(3000)[..], b"retry: 3000\n\n");
    }
}
