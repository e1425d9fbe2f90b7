//! The messages of message-oriented transports (WebSocket).
//!
//! `{"type":"event","channel":"orders","id":"9f3a…-42","event":"created","data":…}` — `event`
//! (the event type) only when set, `retry_ms` only when set; `data` as the event's
//! [`DataFormat`] says: text as a JSON string, JSON as the value itself (with
//! `"format":"json"`), and binary data as a binary message: this JSON without `data` (with
//! `"format":"binary"`), a line break, then the bytes. And
//! `{"type":"gap","channel":…,"reason":…,"head":…}`.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::event::{DataFormat, Event};
use crate::gap::Gap;
use crate::position::Position;

/// One encoded message, text (JSON) or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoded {
    /// A text message (UTF-8 JSON).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl AsRef<[u8]> for Encoded {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Encoded {
    /// The message's bytes, whichever kind it is.
    pub fn bytes(&self) -> &Bytes {
        match self {
            Encoded::Text(bytes) | Encoded::Binary(bytes) => bytes,
        }
    }
}

#[derive(Serialize)]
struct EventMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    channel: &'a str,
    id: Position,
    #[serde(rename = "event", skip_serializing_if = "Option::is_none")]
    event_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u32>,
    #[serde(skip_serializing_if = "DataFormat::is_text")]
    format: DataFormat,
    #[serde(skip_serializing_if = "Data::is_none")]
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Data<'a> {
    Text(&'a str),
    Json(&'a RawValue),
    /// Binary data follows the JSON, outside it.
    None,
}

impl Data<'_> {
    fn is_none(&self) -> bool {
        matches!(self, Data::None)
    }
}

#[derive(Serialize)]
struct GapMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    gap: &'a Gap,
}

/// The `event` message of `event`. Data that does not hold what its format says (the manager
/// checks it at publish; a store or bus could still hand over anything) is sent as text, with
/// replacement characters where it is not UTF-8: never spliced into the message unchecked.
pub fn encode_event(event: &Event) -> Encoded {
    let text;
    let (format, data) = match event.format {
        DataFormat::Binary => (DataFormat::Binary, Data::None),
        DataFormat::Json => match serde_json::from_slice::<&RawValue>(&event.data) {
            Ok(json) => (DataFormat::Json, Data::Json(json)),
            Err(_) => {
                text = String::from_utf8_lossy(&event.data);
                (DataFormat::Text, Data::Text(&text))
            }
        },
        _ => {
            text = String::from_utf8_lossy(&event.data);
            (DataFormat::Text, Data::Text(&text))
        }
    };
    let message = EventMessage {
        kind: "event",
        channel: crate::routing::channel_name(&event.channel),
        id: event.id,
        event_type: event.event_type.as_deref(),
        retry_ms: event.retry_ms,
        format,
        data,
    };
    // Strings, a position and checked JSON: serialising cannot fail.
    let json = serde_json::to_vec(&message).unwrap_or_default();
    if format != DataFormat::Binary {
        return Encoded::Text(Bytes::from(json));
    }
    let mut out = BytesMut::with_capacity(json.len() + 1 + event.data.len());
    out.put_slice(&json);
    out.put_u8(b'\n');
    out.put_slice(&event.data);
    Encoded::Binary(out.freeze())
}

/// The `gap` message.
pub fn encode_gap(gap: &Gap) -> Bytes {
    serde_json::to_vec(&GapMessage { kind: "gap", gap })
        .map(Bytes::from)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::gap::GapReason;
    use crate::position::Epoch;

    fn event(data: &'static [u8], format: DataFormat) -> Event {
        let mut new = NewEvent::new("c", data);
        new.format = format;
        new.into_event(Position::new(Epoch(0xa), 3))
    }

    fn text(encoded: Encoded) -> serde_json::Value {
        match encoded {
            Encoded::Text(json) => serde_json::from_slice(&json).unwrap(),
            Encoded::Binary(_) => panic!("a text message was expected"),
        }
    }

    #[test]
    fn event_and_gap_messages() {
        let mut event = event(b"a \"quoted\"\nline", DataFormat::Text);
        event.event_type = Some("t".into());
        assert_eq!(
            text(encode_event(&event)),
            serde_json::json!({"type":"event","channel":"c","id":"a-3","event":"t","data":"a \"quoted\"\nline"})
        );
        let gap = Gap {
            channel: "c".into(),
            reason: GapReason::Limit,
            head: Position::new(Epoch(0xa), 9),
        };
        let json: serde_json::Value = serde_json::from_slice(&encode_gap(&gap)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"gap","channel":"c","reason":"limit","head":"a-9"})
        );
    }

    #[test]
    fn json_data_is_carried_as_json() {
        let json = text(encode_event(&event(b"{\"n\":[1,2]}", DataFormat::Json)));
        assert_eq!(
            json,
            serde_json::json!({"type":"event","channel":"c","id":"a-3","format":"json","data":{"n":[1,2]}})
        );
        // A JSON string stays distinguishable from text by its format.
        let json = text(encode_event(&event(b"\"hi\"", DataFormat::Json)));
        assert_eq!(
            (&json["format"], &json["data"]),
            (&"json".into(), &"hi".into())
        );
    }

    #[test]
    fn data_that_is_not_the_json_it_claims_is_sent_as_text_not_spliced_in() {
        // Spliced in raw, this would add a field to the message.
        let json = text(encode_event(&event(
            b"1,\"type\":\"gap\"",
            DataFormat::Json,
        )));
        assert_eq!(json["type"], "event");
        assert_eq!(json["data"], "1,\"type\":\"gap\"");
        assert!(json.get("format").is_none());
    }

    #[test]
    fn binary_data_is_a_binary_message_after_a_json_line() {
        let Encoded::Binary(message) = encode_event(&event(b"\x00\n\xff", DataFormat::Binary))
        else {
            panic!("a binary message was expected");
        };
        let split = message.iter().position(|&b| b == b'\n').unwrap();
        let head: serde_json::Value = serde_json::from_slice(&message[..split]).unwrap();
        assert_eq!(
            head,
            serde_json::json!({"type":"event","channel":"c","id":"a-3","format":"binary"})
        );
        assert_eq!(&message[split + 1..], b"\x00\n\xff");
    }
}
