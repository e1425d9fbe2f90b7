//! The JSON messages of message-oriented transports (WebSocket).
//!
//! `{"type":"event","channel":"orders","id":"9f3a…-42","event":"created","data":"…"}` — `event`
//! (the event type) only when set, `retry_ms` only when set, `data` the UTF-8 payload as a JSON
//! string; and `{"type":"gap","channel":…,"reason":…,"head":…}`.

use bytes::Bytes;
use serde::Serialize;

use crate::event::Event;
use crate::gap::Gap;
use crate::position::Position;

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
    data: &'a str,
}

#[derive(Serialize)]
struct GapMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    gap: &'a Gap,
}

/// The `event` message of `event`. A payload that is not UTF-8 is sent with replacement
/// characters (the manager only accepts UTF-8).
pub fn encode_event(event: &Event) -> Bytes {
    let data = String::from_utf8_lossy(&event.data);
    let message = EventMessage {
        kind: "event",
        channel: crate::routing::channel_name(&event.channel),
        id: event.id,
        event_type: event.event_type.as_deref(),
        retry_ms: event.retry_ms,
        data: &data,
    };
    serde_json::to_vec(&message)
        .map(Bytes::from)
        .unwrap_or_default()
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

    #[test]
    fn event_and_gap_messages() {
        let mut event =
            NewEvent::new("c", "a \"quoted\"\nline").into_event(Position::new(Epoch(0xa), 3));
        event.event_type = Some("t".into());
        let json: serde_json::Value = serde_json::from_slice(&encode_event(&event)).unwrap();
        assert_eq!(
            json,
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
}
