//! How events are laid out in streams and pub/sub messages.
//!
//! A stream entry's id is `0-<offset>` and it has two fields: `m`, the event's fields as the
//! core [`frame`](realtime_core::frame) format writes them (routing, type, retry, timestamp),
//! and `d`, the payload bytes. A pub/sub message is a core frame (the bus's `DriverBus`
//! writes and reads it), which the append script writes too (header `v1 <epoch> <offset> 0`:
//! published by the store, origin unknown).

use bytes::Bytes;
use realtime_core::frame::{self, FrameError};
use realtime_core::{BackendError, BackendErrorKind, Event, NewEvent, Position};

pub(crate) fn decode_error(message: impl Into<String>) -> BackendError {
    BackendError::new("redis", BackendErrorKind::Decode, message)
}

fn frame_error(error: FrameError) -> BackendError {
    decode_error(error.to_string())
}

/// The `m` field of an event about to be appended.
pub(crate) fn encode_meta(event: &NewEvent) -> Vec<u8> {
    frame::encode_fields(event)
}

/// Rebuilds an event from its channel, position and stored fields.
pub(crate) fn decode(
    channel: &str,
    id: Position,
    meta: &[u8],
    data: Bytes,
) -> Result<Event, BackendError> {
    frame::decode_fields(channel, id, meta, data).map_err(frame_error)
}
