//! The one wire format every bus carries events in, versioned.
//!
//! A frame is a text header line, the event's fields as a small JSON object, and the payload
//! bytes:
//!
//! ```text
//! v1 <epoch hex> <offset> <origin hex>\n{"t":tenant,"s":subject,"y":type,"r":retry_ms,"f":format,"ts":nanos}\n<data>
//! ```
//!
//! `f` (the [`DataFormat`], `json` or `binary`) is left out for text; a reader of a build that
//! predates it ignores it and takes the payload as text.
//!
//! The channel travels beside the frame (the broker's channel, subject or key), so it is not
//! repeated. A frame of another version is refused with [`FrameError::UnknownVersion`], never
//! guessed at: an instance that cannot read a frame says so (the bus turns it into
//! [`BusMessage::Interrupted`](crate::BusMessage::Interrupted), so the event is repaired from
//! the store or reported as a gap). The header is plain text so that a store's server-side
//! script can write a frame too.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::event::{DataFormat, Event, NewEvent};
use crate::position::{Epoch, Position};

/// The version this build writes, and the only one it reads.
pub const VERSION: &str = "v1";

/// Which instance published an event on the bus, so an instance recognises its own echoes.
/// [`Origin::UNKNOWN`] when a store published the event for the bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Origin(pub u64);

impl Origin {
    /// Published by a store, or by a sender that does not say.
    pub const UNKNOWN: Origin = Origin(0);

    /// A new, hard-to-guess origin for an instance starting up; never [`Origin::UNKNOWN`].
    pub fn fresh() -> Origin {
        Origin(Epoch::fresh().0)
    }
}

/// Why a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame was written by another version of the format.
    UnknownVersion(String),
    /// The frame is not laid out as its version says.
    Malformed(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnknownVersion(v) => {
                write!(
                    f,
                    "frame version {v:?} is not {VERSION} (refused, not guessed at)"
                )
            }
            FrameError::Malformed(why) => write!(f, "malformed {VERSION} frame: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// The event's fields other than its channel, position and payload, as read.
#[derive(Deserialize)]
struct Fields {
    #[serde(rename = "t", default)]
    tenant: Option<String>,
    #[serde(rename = "s", default)]
    subject: Option<String>,
    #[serde(rename = "y", default)]
    event_type: Option<String>,
    #[serde(rename = "r", default)]
    retry_ms: Option<u32>,
    #[serde(rename = "f", default)]
    format: DataFormat,
    /// Nanoseconds since the Unix epoch (fits a u64 until 2554).
    #[serde(rename = "ts")]
    timestamp_ns: u64,
}

/// The same fields, as written (borrowed: nothing is copied to write them).
#[derive(Serialize)]
struct FieldsRef<'a> {
    #[serde(rename = "t", skip_serializing_if = "Option::is_none")]
    tenant: &'a Option<String>,
    #[serde(rename = "s", skip_serializing_if = "Option::is_none")]
    subject: &'a Option<String>,
    #[serde(rename = "y", skip_serializing_if = "Option::is_none")]
    event_type: &'a Option<String>,
    #[serde(rename = "r", skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u32>,
    #[serde(rename = "f", skip_serializing_if = "DataFormat::is_text")]
    format: DataFormat,
    #[serde(rename = "ts")]
    timestamp_ns: u64,
}

impl FieldsRef<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        // Strings, integers and options: serialising cannot fail.
        serde_json::to_writer(out, self).unwrap_or_default();
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// The JSON object of an event's fields before it is stored: what a store keeps beside the
/// payload, and what its script puts in a frame's second part.
pub fn encode_fields(event: &NewEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let NewEvent {
        channel: _,
        tenant,
        subject,
        event_type,
        data: _,
        format,
        retry_ms,
        timestamp,
        idempotency_key: _,
    } = event;
    FieldsRef {
        tenant,
        subject,
        event_type,
        retry_ms: *retry_ms,
        format: *format,
        timestamp_ns: nanos(*timestamp),
    }
    .write(&mut out);
    out
}

/// Rebuilds an event from its channel, position, fields object and payload.
pub fn decode_fields(
    channel: &str,
    id: Position,
    fields: &[u8],
    data: Bytes,
) -> Result<Event, FrameError> {
    let fields: Fields =
        serde_json::from_slice(fields).map_err(|_| FrameError::Malformed("fields"))?;
    Ok(Event {
        id,
        channel: channel.to_owned(),
        tenant: fields.tenant,
        subject: fields.subject,
        event_type: fields.event_type,
        data,
        format: fields.format,
        retry_ms: fields.retry_ms,
        timestamp: UNIX_EPOCH + Duration::from_nanos(fields.timestamp_ns),
    })
}

/// The frame header line of an event at `id` from `origin`, without the line break.
pub fn header(id: Position, origin: Origin) -> String {
    format!("{VERSION} {:x} {} {:x}", id.epoch.0, id.offset, origin.0)
}

/// The frame of `event` published by `origin`.
pub fn encode(event: &Event, origin: Origin) -> Vec<u8> {
    let mut out = header(event.id, origin).into_bytes();
    out.reserve(80 + event.data.len());
    out.push(b'\n');
    // Named one by one, so a field added to the event cannot be left out of the frame.
    let Event {
        id: _,
        channel: _,
        tenant,
        subject,
        event_type,
        data: _,
        format,
        retry_ms,
        timestamp,
    } = event;
    FieldsRef {
        tenant,
        subject,
        event_type,
        retry_ms: *retry_ms,
        format: *format,
        timestamp_ns: nanos(*timestamp),
    }
    .write(&mut out);
    out.push(b'\n');
    out.extend_from_slice(&event.data);
    out
}

/// Reads a frame that arrived for `channel`.
pub fn decode(channel: &str, frame: &[u8]) -> Result<(Event, Origin), FrameError> {
    let version = frame
        .split(|&b| b == b' ' || b == b'\n')
        .next()
        .unwrap_or_default();
    if version != VERSION.as_bytes() {
        let version = String::from_utf8_lossy(version).chars().take(16).collect();
        return Err(FrameError::UnknownVersion(version));
    }
    let mut parts = frame.splitn(3, |&b| b == b'\n');
    let (Some(header), Some(fields), Some(data)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(FrameError::Malformed("not `header\\nfields\\ndata`"));
    };
    let header = std::str::from_utf8(header).map_err(|_| FrameError::Malformed("header"))?;
    let mut words = header.split(' ').skip(1);
    let (Some(epoch), Some(offset), Some(origin), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(FrameError::Malformed(
            "header is not `v1 epoch offset origin`",
        ));
    };
    let epoch = number(epoch, 16).ok_or(FrameError::Malformed("epoch"))?;
    let offset = number(offset, 10).ok_or(FrameError::Malformed("offset"))?;
    let origin = number(origin, 16).ok_or(FrameError::Malformed("origin"))?;
    let id = Position::new(Epoch(epoch), offset);
    let event = decode_fields(channel, id, fields, Bytes::copy_from_slice(data))?;
    Ok((event, Origin(origin)))
}

/// Digits only (no sign, no spaces), as [`header`] writes them.
fn number(text: &str, radix: u32) -> Option<u64> {
    let digits = !text.is_empty() && text.chars().all(|c| c.is_digit(radix));
    digits
        .then(|| u64::from_str_radix(text, radix).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut new = NewEvent::new("c", "line\nwith\nbreaks");
        new.tenant = Some("t".into());
        new.event_type = Some("x".into());
        new.retry_ms = Some(7);
        new.timestamp = UNIX_EPOCH + Duration::from_nanos(1_764_430_000_123_456_789);
        new.into_event(Position::new(Epoch(0xabc), 42))
    }

    #[test]
    fn frames_round_trip() {
        let event = sample();
        let frame = encode(&event, Origin(0xfeed));
        assert!(frame.starts_with(b"v1 abc 42 feed\n"));
        assert_eq!(decode("c", &frame).unwrap(), (event, Origin(0xfeed)));
    }

    #[test]
    fn the_data_format_travels_and_text_is_left_out() {
        let text = encode(&sample(), Origin::UNKNOWN);
        assert!(!String::from_utf8_lossy(&text).contains("\"f\""));
        for format in [DataFormat::Json, DataFormat::Binary] {
            let mut event = sample();
            event.format = format;
            event.data = Bytes::from_static(b"[1,\n2]");
            let frame = encode(&event, Origin(1));
            assert_eq!(decode("c", &frame).unwrap().0, event);
        }
        // A frame without `f` (an older writer) is text; a format unknown here (a newer
        // writer) is read, as bytes.
        let (event, _) = decode("c", b"v1 1 1 0\n{\"ts\":1}\nhi").unwrap();
        assert_eq!(event.format, DataFormat::Text);
        let (event, _) = decode("c", b"v1 1 1 0\n{\"f\":\"cbor\",\"ts\":1}\nhi").unwrap();
        assert_eq!(event.format, DataFormat::Binary);
    }

    #[test]
    fn another_version_is_refused_not_guessed_at() {
        let frame = encode(&sample(), Origin::UNKNOWN);
        let mut v2 = b"v2".to_vec();
        v2.extend_from_slice(&frame[2..]);
        assert_eq!(
            decode("c", &v2),
            Err(FrameError::UnknownVersion("v2".into()))
        );
        // The format before versions: `<epoch> <offset>\n…`.
        assert!(matches!(
            decode("c", b"abc 42\n{\"ts\":1}\ndata"),
            Err(FrameError::UnknownVersion(_))
        ));
        for unknown in [&b"garbage"[..], b"v2 with no line break", b""] {
            assert!(
                matches!(decode("c", unknown), Err(FrameError::UnknownVersion(_))),
                "{unknown:?}"
            );
        }
        for bad in [
            &b"v1"[..],
            b"v1 zz 1 0\n{}\n",
            b"v1 1 1\n{\"ts\":1}\n",
            b"v1 1 1 0\nnot json\n",
            b"v1 +1 1 0\n{\"ts\":1}\n",
            b"v1 1 99999999999999999999999 0\n{\"ts\":1}\n",
        ] {
            assert!(
                matches!(decode("c", bad), Err(FrameError::Malformed(_))),
                "{bad:?}"
            );
        }
    }
}
