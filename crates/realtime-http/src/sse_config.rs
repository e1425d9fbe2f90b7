//! Endpoint configuration.

use std::time::Duration;

use realtime_core::{Error, Result};

/// Query parameter names, routing trust, heartbeat and reconnection delay of the SSE
/// endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseConfig {
    /// The channel to stream. Default `channel`.
    pub channel_param: String,
    /// The tenant, used only as described at [`SseConfig::routing_from_query`]. Default `tenant`.
    pub tenant_param: String,
    /// The subject, likewise. Default `subject`.
    pub subject_param: String,
    /// Resume position when no `Last-Event-ID` header is sent. Default `last_event_id`.
    pub last_event_id_param: String,
    /// For a new subscriber: how many of the channel's newest events to send before live
    /// ones (`?backlog=20`; at most the manager's replay limit; absent: the manager's
    /// `backlog_on_connect`). Ignored when resuming. Default `backlog`.
    pub backlog_param: String,
    /// Whether the tenant and subject may come from the query string when no authorization
    /// hook is set. Default `false`: such a request gets 400, since a client could name any
    /// tenant. With a hook, the query's values are never used for routing.
    pub routing_from_query: bool,
    /// A `:` heartbeat comment goes out after this long without traffic, so proxies and the
    /// client see the stream alive. Default 15 s.
    pub heartbeat_interval: Duration,
    /// The reconnection delay announced to the client (`retry:`), in ms. Default 3,000.
    pub retry_ms: u32,
    /// A client that takes nothing for this long while data waits for it is cut: its
    /// subscription and connection slot are released and
    /// `realtime_write_timeouts_total{transport="sse"}` counts it. Enforced by adapters whose
    /// server has no write timeout of its own (actix-web); `realtime-sse-axum`'s `Server`
    /// applies its own `write_timeout` to every write instead. Default 30 s.
    pub write_timeout: Duration,
    /// The status answered when the manager is at its connection limit. Default 503 (with
    /// `Retry-After`); the Go package answered 429. 400 to 599.
    pub over_capacity_status: u16,
    /// A request header the client's id may come from (the Go package read `X-Client-ID`);
    /// an id granted by the authorization hook wins over it. Default `None`: not read — a
    /// client naming its own id joins that id's group, and a disconnect of the id closes
    /// it too; set it only where clients are trusted, or let the hook set the id. The stream's first frame carries the id either way
    /// (`: client_id <id>`).
    pub client_id_header: Option<String>,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            channel_param: "channel".into(),
            tenant_param: "tenant".into(),
            subject_param: "subject".into(),
            last_event_id_param: "last_event_id".into(),
            backlog_param: "backlog".into(),
            routing_from_query: false,
            heartbeat_interval: Duration::from_secs(15),
            retry_ms: 3_000,
            write_timeout: Duration::from_secs(30),
            over_capacity_status: 503,
            client_id_header: None,
        }
    }
}

impl SseConfig {
    /// Checks that the parameter names are non-empty and distinct, and the heartbeat, write
    /// timeout and over-capacity status are usable.
    pub fn validate(&self) -> Result<()> {
        let names = [
            ("channel_param", &self.channel_param),
            ("tenant_param", &self.tenant_param),
            ("subject_param", &self.subject_param),
            ("last_event_id_param", &self.last_event_id_param),
            ("backlog_param", &self.backlog_param),
        ];
        for (i, (field, name)) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::InvalidConfig {
                    field,
                    reason: "must not be empty".into(),
                });
            }
            if names[..i].iter().any(|(_, other)| other == name) {
                return Err(Error::InvalidConfig {
                    field,
                    reason: format!("{name:?} is used twice"),
                });
            }
        }
        if self.heartbeat_interval < Duration::from_millis(10) {
            return Err(Error::InvalidConfig {
                field: "heartbeat_interval",
                reason: "must be at least 10 ms".into(),
            });
        }
        if self.write_timeout < Duration::from_millis(10) {
            return Err(Error::InvalidConfig {
                field: "write_timeout",
                reason: "must be at least 10 ms".into(),
            });
        }
        if !(400..=599).contains(&self.over_capacity_status) {
            return Err(Error::InvalidConfig {
                field: "over_capacity_status",
                reason: "an error status, 400 to 599".into(),
            });
        }
        Ok(())
    }
}
