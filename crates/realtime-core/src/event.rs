//! The event, its JSON form, and the shared, encode-once wrapper used for fan-out.

use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::position::Position;

/// An event as stored, carried by a bus and delivered to clients.
///
/// The JSON form uses the Go package's field names (`id`, `channel`, `tenant_id`, `subject`,
/// `type`, `data` as base64, `retry_ms`, `timestamp` as RFC 3339), so events written by
/// either side can be read by the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The event's position in its channel, assigned by the store.
    pub id: Position,
    /// The channel the event is stored and carried under: the name it was published to, or,
    /// for a tenant's event with tenant-scoped channels, its scoped name
    /// ([`routing::channel_name`](crate::routing::channel_name) gives the plain one, which is
    /// what the wire carries).
    pub channel: String,
    /// The tenant the event belongs to; `None` is a broadcast to every client of the channel
    /// that has no tenant or the same tenant.
    #[serde(default, rename = "tenant_id", skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The subject (e.g. a user id) the event is addressed to; `None` addresses everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The event type: the SSE `event:` field.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// The payload (UTF-8 when published through the [`Manager`](crate::Manager)).
    #[serde(with = "base64_bytes")]
    pub data: Bytes,
    /// The reconnection delay the client should use, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_ms: Option<u32>,
    /// When the event was published.
    #[serde(with = "rfc3339")]
    pub timestamp: SystemTime,
}

/// An event before the store has given it a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// See [`Event::channel`].
    pub channel: String,
    /// See [`Event::tenant`].
    pub tenant: Option<String>,
    /// See [`Event::subject`].
    pub subject: Option<String>,
    /// See [`Event::event_type`].
    pub event_type: Option<String>,
    /// See [`Event::data`].
    pub data: Bytes,
    /// See [`Event::retry_ms`].
    pub retry_ms: Option<u32>,
    /// See [`Event::timestamp`].
    pub timestamp: SystemTime,
    /// Makes a retried publish safe: a store that already holds an event of this channel
    /// appended with the same key returns that event's position instead of appending again
    /// (see [`Store::append`](crate::Store::append)). Not part of the stored event.
    pub idempotency_key: Option<String>,
}

impl NewEvent {
    /// A new event on `channel` with `data`, stamped now, with no routing or type.
    pub fn new(channel: impl Into<String>, data: impl Into<Bytes>) -> Self {
        NewEvent {
            channel: channel.into(),
            tenant: None,
            subject: None,
            event_type: None,
            data: data.into(),
            retry_ms: None,
            timestamp: SystemTime::now(),
            idempotency_key: None,
        }
    }

    /// The stored event at `id`.
    pub fn into_event(self, id: Position) -> Event {
        Event {
            id,
            channel: self.channel,
            tenant: self.tenant,
            subject: self.subject,
            event_type: self.event_type,
            data: self.data,
            retry_ms: self.retry_ms,
            timestamp: self.timestamp,
        }
    }
}

impl Event {
    /// The JSON form (Go field names).
    pub fn to_json(&self) -> Bytes {
        // Serializing plain strings, bytes and a position cannot fail.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(data: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_nanos(*t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::position::Epoch;

    #[test]
    fn json_uses_the_go_field_names() {
        let mut new = NewEvent::new("orders", "hi");
        new.tenant = Some("t1".into());
        new.event_type = Some("created".into());
        new.timestamp = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        let event = new.into_event(Position::new(Epoch(0xab), 3));
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "ab-3", "channel": "orders", "tenant_id": "t1", "type": "created",
                "data": "aGk=", "timestamp": "1970-01-01T00:00:01.500000000Z"
            })
        );
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
