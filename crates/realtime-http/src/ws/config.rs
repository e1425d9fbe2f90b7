//! Endpoint configuration.

use std::time::Duration;

use realtime_core::{Error, Result};

use super::origin::OriginPolicy;

/// How the WebSocket endpoint behaves. Defaults follow the Go package's `DefaultConfig`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// Who may connect. Default [`OriginPolicy::AllowAll`].
    pub origin_policy: OriginPolicy,
    /// The query parameter with the initial topics. Default `topics`.
    pub topics_param: String,
    /// Largest message (and frame) accepted from a client, in bytes; a larger one closes the
    /// connection with 1009. Default 64 KiB.
    pub read_limit: usize,
    /// How long one write may take before the connection is dropped. Default 10 s.
    pub write_timeout: Duration,
    /// Topics per connection at most. Default 32.
    pub max_topic_count: usize,
    /// Longest topic in bytes. Default 128.
    pub max_topic_length: usize,
    /// WebSocket pings go out this often, so proxies and the client see the connection
    /// alive. Default 15 s.
    pub heartbeat_interval: Duration,
    /// Interval of the application keepalive message `{"type":"keepalive","timestamp":…}`;
    /// `None` (default) sends none. Pings go out every `heartbeat_interval` regardless.
    pub keepalive_interval: Option<Duration>,
    /// Whether the tenant and subject may come from the query string when no authorization
    /// hook is set. Default `false` (a request naming them gets 400).
    pub routing_from_query: bool,
    /// Bytes one connection may hold that its client has not taken yet (queued messages,
    /// pongs to a client that pings and never reads); past it the connection is dropped.
    /// Must exceed the largest message it sends. Default 8 MiB.
    pub max_write_buffer: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            origin_policy: OriginPolicy::AllowAll,
            topics_param: "topics".into(),
            read_limit: 64 * 1024,
            write_timeout: Duration::from_secs(10),
            max_topic_count: 32,
            max_topic_length: 128,
            heartbeat_interval: Duration::from_secs(15),
            keepalive_interval: None,
            routing_from_query: false,
            max_write_buffer: 8 << 20,
        }
    }
}

impl WsConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.topics_param.is_empty() {
            return invalid("topics_param", "must not be empty");
        }
        if self.read_limit < 128 {
            return invalid("read_limit", "must be at least 128 bytes");
        }
        if self.max_write_buffer < 64 * 1024 {
            return invalid("max_write_buffer", "must be at least 64 KiB");
        }
        if self.heartbeat_interval < Duration::from_millis(10) {
            return invalid("heartbeat_interval", "must be at least 10 ms");
        }
        // Timers run at fractions of it: a zero period would panic.
        if self.write_timeout < Duration::from_millis(10) {
            return invalid("write_timeout", "must be at least 10 ms");
        }
        if self.max_topic_count == 0 || self.max_topic_length == 0 {
            return invalid("max_topic_count", "topic limits must be at least 1");
        }
        if self
            .keepalive_interval
            .is_some_and(|i| i < Duration::from_millis(10))
        {
            return invalid("keepalive_interval", "must be at least 10 ms");
        }
        Ok(())
    }
}
