//! The event, its JSON form, and the shared, encode-once wrapper used for fan-out.

use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::position::Position;

/// What an event's payload is, set at publish and kept with the event: how each transport
/// carries it.
///
/// | format | WebSocket | SSE `data:` |
/// |---|---|---|
/// | [`Text`](DataFormat::Text) | `"data"` as a JSON string | the text, one `data:` line per line |
/// | [`Json`](DataFormat::Json) | `"data"` as the JSON value itself, `"format":"json"` | the JSON text |
/// | [`Binary`](DataFormat::Binary) | a binary frame: the message's JSON, `\n`, the bytes | standard base64, padded, one line |
///
/// Read back from a frame or a store, a format this build does not know is taken as
/// [`Binary`](DataFormat::Binary) (bytes are never spliced into a message), so a newer writer
/// does not make its events unreadable here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DataFormat {
    /// UTF-8 text (the default, and what the Go package carried).
    #[default]
    Text,
    /// One JSON value, UTF-8, nested at most 64 levels: checked at publish.
    Json,
    /// Any bytes.
    Binary,
}

impl DataFormat {
    /// Whether this is [`DataFormat::Text`] (the default, left out of encoded forms).
    pub fn is_text(&self) -> bool {
        *self == DataFormat::Text
    }

    /// The name used on the wire: `text`, `json` or `binary`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DataFormat::Text => "text",
            DataFormat::Json => "json",
            DataFormat::Binary => "binary",
        }
    }
}

impl<'de> Deserialize<'de> for DataFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match &*name {
            "text" => DataFormat::Text,
            "json" => DataFormat::Json,
            _ => DataFormat::Binary,
        })
    }
}

/// An event as stored, carried by a bus and delivered to clients.
///
/// The JSON form uses the Go package's field names (`id`, `channel`, `tenant_id`, `subject`,
/// `type`, `data` as base64, `retry_ms`, `timestamp` as RFC 3339), so events written by
/// either side can be read by the other; `format` (`json` or `binary`) is added for data that
/// is not text.
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
    /// The payload, as [`format`](Event::format) says (checked when published through the
    /// [`Manager`](crate::Manager)).
    #[serde(with = "base64_bytes")]
    pub data: Bytes,
    /// What the payload is: text, JSON or bytes.
    #[serde(default, skip_serializing_if = "DataFormat::is_text")]
    pub format: DataFormat,
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
    /// See [`Event::format`].
    pub format: DataFormat,
    /// See [`Event::retry_ms`].
    pub retry_ms: Option<u32>,
    /// See [`Event::timestamp`].
    pub timestamp: SystemTime,
    /// Makes a retried publish safe: a store that already holds an event of this channel
    /// appended with the same key returns that event's position instead of appending again
    /// (see [`Store::append`](crate::Store::append)). Not part of the stored event. The
    /// [`Manager`](crate::Manager) prefixes a tenant's key with the tenant and a control
    /// character, so a store compares keys as opaque strings.
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
            format: DataFormat::Text,
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
            format: self.format,
            retry_ms: self.retry_ms,
            timestamp: self.timestamp,
        }
    }
}

impl Event {
    /// The event as a new one, without its position: to store it again elsewhere (another
    /// instance's history). Every field but the position is kept.
    pub fn into_new(self) -> NewEvent {
        // Named one by one, so a field added to both cannot be forgotten here.
        let Event {
            id: _,
            channel,
            tenant,
            subject,
            event_type,
            data,
            format,
            retry_ms,
            timestamp,
        } = self;
        NewEvent {
            channel,
            tenant,
            subject,
            event_type,
            data,
            format,
            retry_ms,
            timestamp,
            idempotency_key: None,
        }
    }

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

    #[test]
    fn json_names_a_format_other_than_text() {
        let mut new = NewEvent::new("c", vec![0u8, 255]);
        new.format = DataFormat::Binary;
        new.timestamp = SystemTime::UNIX_EPOCH;
        let event = new.into_event(Position::new(Epoch(1), 1));
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).unwrap();
        assert_eq!(json["format"], "binary");
        assert_eq!(json["data"], "AP8=");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
