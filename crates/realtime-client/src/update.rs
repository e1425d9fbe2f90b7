//! What the client's stream yields, and the resume points it keeps.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use realtime_core::{DataFormat, Position};

use crate::error::Error;

/// One item of a [`RealtimeClient`](crate::RealtimeClient)'s stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Update {
    /// An event, in order, never twice.
    Event(ReceivedEvent),
    /// The server could not replay `channel` exactly: refetch its state as of `head`; events
    /// continue after it.
    Gap {
        /// The channel.
        channel: String,
        /// Why (`unknown_position`, `epoch_changed`, `trimmed`, `limit`, `lagged`, …).
        reason: String,
        /// The position events continue after.
        head: String,
    },
    /// A connection is up and its channels joined: what it replayed (the events missed while
    /// away, or a backlog) came just before; live events follow.
    Connected {
        /// The id the server gave the connection.
        client_id: Option<String>,
    },
    /// The connection broke; the client reconnects after `retry_in` and resumes.
    Disconnected {
        /// Why.
        error: Error,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
}

/// An event as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// The channel.
    pub channel: String,
    /// Its position, the token to resume after.
    pub id: String,
    /// The event type (`message` when the publisher set none).
    pub event_type: String,
    /// What `data` is. Over SSE always [`DataFormat::Text`]: JSON arrives as its text, binary
    /// data as base64.
    pub format: DataFormat,
    /// The payload: text, JSON text, or bytes.
    pub data: Bytes,
}

impl ReceivedEvent {
    /// The data as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }

    /// The data parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }
}

/// The newest id of every channel: where each resumes.
#[derive(Debug, Default, Clone)]
pub(crate) struct ResumePoints {
    ids: HashMap<String, String>,
}

impl ResumePoints {
    pub(crate) fn new(ids: HashMap<String, String>) -> Self {
        ResumePoints { ids }
    }

    pub(crate) fn get(&self, channel: &str) -> Option<&str> {
        self.ids.get(channel).map(String::as_str)
    }

    /// Records an event's id; `false` for an id at or before the channel's newest in the
    /// same history (a repeat: the server replays exactly, this only guards).
    pub(crate) fn advance(&mut self, channel: &str, id: &str) -> bool {
        if let (Some(last), Ok(new)) = (self.ids.get(channel), Position::parse(id))
            && let Ok(last) = Position::parse(last)
            && last.epoch == new.epoch
            && new.offset <= last.offset
        {
            return false;
        }
        self.set(channel, id);
        true
    }

    /// Moves the channel's resume point (a gap's head).
    pub(crate) fn set(&mut self, channel: &str, id: &str) {
        match self.ids.get_mut(channel) {
            Some(last) => id.clone_into(last),
            None => {
                self.ids.insert(channel.to_owned(), id.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_or_older_id_of_the_same_history_is_not_taken() {
        let mut points = ResumePoints::default();
        assert!(points.advance("c", "a-5"));
        assert!(!points.advance("c", "a-5"));
        assert!(!points.advance("c", "a-4"));
        assert!(points.advance("c", "a-6"));
        assert!(points.advance("c", "b-1"), "another history");
        assert!(points.advance("other", "a-1"));
        assert_eq!(points.get("c"), Some("b-1"));
    }
}
