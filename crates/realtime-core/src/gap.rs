//! The gap signal: replay or live delivery could not be exact.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::position::Position;

/// Why a client did not get an exact, contiguous sequence of a channel's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GapReason {
    /// The resume position is malformed or lies beyond the channel's head.
    UnknownPosition,
    /// The channel's history was lost and restarted since the position was issued.
    EpochChanged,
    /// Events after the position are no longer retained.
    Trimmed,
    /// More events were missed than the replay limit allows.
    Limit,
    /// Events were dropped because the client did not keep up
    /// ([`SlowConsumer::SkipWithGap`](crate::SlowConsumer::SkipWithGap)).
    Dropped,
    /// Events of another instance were lost on the bus and no shared store holds them
    /// ([`History::PerInstance`](crate::History::PerInstance) mode): the channel's history on
    /// this instance starts a new epoch.
    Lost,
}

impl GapReason {
    /// The wire name (`unknown_position`, `epoch_changed`, `trimmed`, `limit`, `dropped`, `lost`).
    pub fn as_str(self) -> &'static str {
        match self {
            GapReason::UnknownPosition => "unknown_position",
            GapReason::EpochChanged => "epoch_changed",
            GapReason::Trimmed => "trimmed",
            GapReason::Limit => "limit",
            GapReason::Dropped => "dropped",
            GapReason::Lost => "lost",
        }
    }
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Told to a client instead of a partial replay or a silent hole.
///
/// The application should refetch the channel's state as of `head`; delivery continues with
/// the events after `head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The channel concerned (serialized as the name its clients know it by,
    /// [`channel_name`](crate::routing::channel_name)).
    #[serde(serialize_with = "client_channel_name")]
    pub channel: Arc<str>,
    /// Why the sequence is not exact.
    pub reason: GapReason,
    /// The channel's head when the gap was found: the position to resume from.
    pub head: Position,
}

fn client_channel_name<S: serde::Serializer>(channel: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(crate::routing::channel_name(channel))
}

impl Gap {
    /// The JSON body: `{"channel":…,"reason":…,"head":…}`.
    pub fn to_json(&self) -> Bytes {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }
}
