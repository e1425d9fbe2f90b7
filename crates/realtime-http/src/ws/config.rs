//! Endpoint configuration.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use realtime_core::{Error, Result};

use super::origin::OriginPolicy;

/// How the WebSocket endpoint behaves. Each default is documented on its field; where the
/// Go package differs, `MIGRATING.md` says so.
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
    /// Interval of the application keepalive message; `None` (default) sends none. Pings go
    /// out every `heartbeat_interval` regardless.
    pub keepalive_interval: Option<Duration>,
    /// The keepalive message (the Go package's `messageFunc`), made afresh each time.
    /// Default `{"type":"keepalive","timestamp":"<RFC 3339, UTC, ms>"}`.
    pub keepalive_message: KeepaliveMessage,
    /// With [`OriginPolicy::AllowList`]: also admit requests that carry no `Origin` header
    /// (non-browser clients — a browser always sends one on a WebSocket). Default `false`:
    /// refused (403), so a missing header never bypasses the list.
    pub allow_missing_origin: bool,
    /// The status answered when the manager is at its connection limit. Default 503 (with
    /// `Retry-After`); the Go package answered 429. 400 to 599.
    pub over_capacity_status: u16,
    /// A request header the client's id may come from (the Go package read `X-Client-ID`);
    /// an id granted by the authorization hook wins over it. Default `None`: not read — a
    /// client naming its own id joins that id's group — so set it only where clients are
    /// trusted, or let the hook set the id. The first message carries the id either way
    /// (`{"type":"subscribed","topics":[…],"client_id":"…"}`).
    pub client_id_header: Option<String>,
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
            keepalive_message: KeepaliveMessage::default(),
            allow_missing_origin: false,
            over_capacity_status: 503,
            client_id_header: None,
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
        if !(400..=599).contains(&self.over_capacity_status) {
            return invalid("over_capacity_status", "an error status, 400 to 599");
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

/// Makes the application keepalive message ([`WsConfig::keepalive_message`]).
#[derive(Clone)]
pub struct KeepaliveMessage(Arc<dyn Fn() -> serde_json::Value + Send + Sync>);

impl KeepaliveMessage {
    /// Messages made by `make`, called for each keepalive.
    pub fn new(make: impl Fn() -> serde_json::Value + Send + Sync + 'static) -> Self {
        KeepaliveMessage(Arc::new(make))
    }

    /// The message, now.
    pub fn make(&self) -> serde_json::Value {
        (self.0)()
    }
}

impl Default for KeepaliveMessage {
    /// `{"type":"keepalive","timestamp":"2026-11-30T07:08:09.123Z"}`.
    fn default() -> Self {
        KeepaliveMessage::new(
            || serde_json::json!({"type": "keepalive", "timestamp": rfc3339_now()}),
        )
    }
}

impl fmt::Debug for KeepaliveMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeepaliveMessage(..)")
    }
}

/// Now as RFC 3339 in UTC with milliseconds (`2026-11-30T07:08:09.123Z`).
pub fn rfc3339_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(since.as_secs(), since.subsec_millis())
}

/// `secs` after the Unix epoch, plus `millis`, as RFC 3339 in UTC.
fn rfc3339(secs: u64, millis: u32) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (days counted in 400-year eras of
/// 146,097 days, each starting on March 1st, so leap days fall at an era-year's end).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates_are_right_across_leap_years_and_centuries() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year), 12:34:56.789.
        assert_eq!(rfc3339(951_827_696, 789), "2000-02-29T12:34:56.789Z");
        // 2026-11-30T07:08:09Z.
        assert_eq!(rfc3339(1_796_022_489, 5), "2026-11-30T07:08:09.005Z");
        // 2100-03-01 (2100 is not a leap year).
        assert_eq!(rfc3339(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn over_capacity_status_is_an_error_status() {
        let config = WsConfig {
            over_capacity_status: 200,
            ..WsConfig::default()
        };
        assert!(config.validate().is_err());
        let config = WsConfig {
            over_capacity_status: 429,
            ..WsConfig::default()
        };
        assert!(config.validate().is_ok());
    }
}
