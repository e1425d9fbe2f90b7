//! The JSON messages exchanged after the upgrade.

use std::collections::HashMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ClientMessage {
    /// Join topics; `last_event_ids` maps a topic to the position to resume after;
    /// `backlog` asks the newest events of the others before live ones.
    Subscribe {
        topics: Vec<String>,
        #[serde(default)]
        last_event_ids: HashMap<String, String>,
        #[serde(default)]
        backlog: Option<usize>,
    },
    /// Leave topics.
    Unsubscribe { topics: Vec<String> },
    /// Answered with `{"type":"pong"}`.
    Ping,
}

/// A message from the server other than events and gaps (those come from
/// `realtime_core::message`).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ServerMessage<'a> {
    Subscribed {
        topics: &'a [String],
        /// In the first message only: the connection's client id.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
    },
    Unsubscribed {
        topics: &'a [String],
    },
    Error {
        code: &'a str,
        message: &'a str,
    },
    Pong,
}

impl ServerMessage<'_> {
    pub(super) fn encode(&self) -> Bytes {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_default()
    }
}
