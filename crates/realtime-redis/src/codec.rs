//! How events are laid out in streams and pub/sub messages.
//!
//! A stream entry's id is `0-<offset>` and it has two fields: `m`, a small JSON object with the
//! routing fields, type, retry and timestamp, and `d`, the payload bytes. A pub/sub message is
//! `<epoch hex> <offset>\n<m>\n<d>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use realtime_core::{BackendError, BackendErrorKind, Epoch, Event, NewEvent, Position};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(crate) struct Meta {
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(rename = "y", default, skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    retry_ms: Option<u32>,
    /// Nanoseconds since the Unix epoch (fits a u64 until 2554).
    #[serde(rename = "ts")]
    timestamp_ns: u64,
}

pub(crate) fn decode_error(message: impl Into<String>) -> BackendError {
    BackendError::new("redis", BackendErrorKind::Decode, message)
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

impl Meta {
    fn new(
        tenant: &Option<String>,
        subject: &Option<String>,
        event_type: &Option<String>,
        retry_ms: Option<u32>,
        timestamp: SystemTime,
    ) -> Self {
        Meta {
            tenant: tenant.clone(),
            subject: subject.clone(),
            event_type: event_type.clone(),
            retry_ms,
            timestamp_ns: nanos(timestamp),
        }
    }
}

/// The `m` field of an event about to be appended.
pub(crate) fn encode_meta(event: &NewEvent) -> Vec<u8> {
    let meta = Meta::new(
        &event.tenant,
        &event.subject,
        &event.event_type,
        event.retry_ms,
        event.timestamp,
    );
    serde_json::to_vec(&meta).unwrap_or_default()
}

/// Rebuilds an event from its channel, position and stored fields.
pub(crate) fn decode(
    channel: &str,
    id: Position,
    meta: &[u8],
    data: Bytes,
) -> Result<Event, BackendError> {
    let meta: Meta =
        serde_json::from_slice(meta).map_err(|e| decode_error(format!("event meta: {e}")))?;
    Ok(Event {
        id,
        channel: channel.to_owned(),
        tenant: meta.tenant,
        subject: meta.subject,
        event_type: meta.event_type,
        data,
        retry_ms: meta.retry_ms,
        timestamp: UNIX_EPOCH + Duration::from_nanos(meta.timestamp_ns),
    })
}

/// The pub/sub message of a stored event.
pub(crate) fn encode_message(event: &Event) -> Vec<u8> {
    let meta = Meta::new(
        &event.tenant,
        &event.subject,
        &event.event_type,
        event.retry_ms,
        event.timestamp,
    );
    let mut out = format!("{:x} {}\n", event.id.epoch.0, event.id.offset).into_bytes();
    serde_json::to_writer(&mut out, &meta).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(&event.data);
    out
}

/// Parses a pub/sub message received on `channel`.
pub(crate) fn decode_message(channel: &str, message: &[u8]) -> Result<Event, BackendError> {
    let mut parts = message.splitn(3, |&b| b == b'\n');
    let (Some(position), Some(meta), Some(data)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(decode_error(
            "pub/sub message is not `position\\nmeta\\ndata`",
        ));
    };
    let position =
        std::str::from_utf8(position).map_err(|_| decode_error("position is not text"))?;
    let (epoch, offset) = position
        .split_once(' ')
        .ok_or_else(|| decode_error("position has no offset"))?;
    let epoch = u64::from_str_radix(epoch, 16).map_err(|_| decode_error("bad epoch"))?;
    let offset = offset.parse().map_err(|_| decode_error("bad offset"))?;
    decode(
        channel,
        Position::new(Epoch(epoch), offset),
        meta,
        Bytes::copy_from_slice(data),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let mut new = NewEvent::new("c", "line\nwith\nbreaks");
        new.tenant = Some("t".into());
        new.event_type = Some("x".into());
        new.retry_ms = Some(7);
        new.timestamp = UNIX_EPOCH + Duration::from_nanos(1_764_430_000_123_456_789);
        let event = new.into_event(Position::new(Epoch(0xabc), 42));
        assert_eq!(decode_message("c", &encode_message(&event)).unwrap(), event);
        assert!(decode_message("c", b"garbage").is_err());
        assert!(decode_message("c", b"zz 1\n{}\n").is_err());
    }
}
