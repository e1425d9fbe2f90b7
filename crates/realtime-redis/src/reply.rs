//! Reading Redis replies: epochs, counters and stream entries.

use bytes::Bytes;
use realtime_core::{BackendError, Epoch, Event, Position};
use redis::Value;

use crate::codec::{self, decode_error};

pub(crate) fn epoch_of(value: &Value) -> Result<Epoch, BackendError> {
    let text = match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s.as_str()),
        _ => None,
    };
    text.and_then(|t| u64::from_str_radix(t, 16).ok())
        .map(Epoch)
        .ok_or_else(|| decode_error("bad epoch"))
}

pub(crate) fn int_of(value: &Value) -> Result<u64, BackendError> {
    match value {
        Value::Int(n) if *n >= 0 => Ok(*n as u64),
        _ => Err(decode_error(format!(
            "expected a non-negative integer, got {value:?}"
        ))),
    }
}

pub(crate) fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// The offset of one XRANGE entry (its id is `0-<offset>`).
pub(crate) fn entry_offset(value: &Value) -> Result<u64, BackendError> {
    let Value::Array(parts) = value else {
        return Err(decode_error("stream entry is not an array"));
    };
    parts
        .first()
        .and_then(bytes_of)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|id| id.strip_prefix("0-"))
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| decode_error("entry id"))
}

/// One XRANGE entry: `[id, [field, value, …]]`.
pub(crate) fn entry(channel: &str, epoch: Epoch, value: &Value) -> Result<Event, BackendError> {
    let offset = entry_offset(value)?;
    let Value::Array(parts) = value else {
        return Err(decode_error("stream entry is not an array"));
    };
    let [_, fields] = parts.as_slice() else {
        return Err(decode_error("stream entry shape"));
    };
    let fields: Vec<&Value> = match fields {
        Value::Array(items) => items.iter().collect(),
        Value::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return Err(decode_error("entry fields")),
    };
    let (mut meta, mut data) = (None, None);
    for pair in fields.chunks(2) {
        match (
            pair.first().and_then(|v| bytes_of(v)),
            pair.get(1).and_then(|v| bytes_of(v)),
        ) {
            (Some(b"m"), Some(value)) => meta = Some(value),
            (Some(b"d"), Some(value)) => data = Some(value),
            _ => {}
        }
    }
    let (Some(meta), Some(data)) = (meta, data) else {
        return Err(decode_error("entry without m or d"));
    };
    codec::decode(
        channel,
        Position::new(epoch, offset),
        meta,
        Bytes::copy_from_slice(data),
    )
}
