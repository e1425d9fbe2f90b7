//! Configuration of the Redis store and bus.

use std::fmt;
use std::time::Duration;

use realtime_core::{Error, Result};

use crate::connection::Endpoint;

/// The default server: the local Redis.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// How [`RedisStore`](crate::RedisStore) connects and what it keeps. Mirrors the Go package's
/// `RedisStoreConfig`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStoreConfig {
    /// `redis://[user:password@]host:port[/db]`, `rediss://…` for TLS, or
    /// `unix:///path/to/socket`. Default [`DEFAULT_URL`].
    pub url: String,
    /// For `rediss://` (TLS): the PEM certificate of the authority that signed the server's
    /// certificate, trusted instead of the system's roots (a private CA, a managed Redis's
    /// own CA). Default none: the system's roots. Never printed.
    pub root_certificate_pem: Option<Vec<u8>>,
    /// `url` names one node of a Redis Cluster (7.0 or later); the others are found from it.
    /// Keys route by slot (a channel's keys share one through the `{channel}` hash tag) and
    /// the bus uses sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), so a message goes to the
    /// shard that owns its channel rather than to every node. The store and the bus must
    /// agree. Default `false`: one server (or a proxy in front of a cluster).
    pub cluster: bool,
    /// Prefix of every key. Default `realtime:`.
    pub prefix: String,
    /// Events kept per channel (exact trimming). Default 1,000.
    pub max_events_per_channel: usize,
    /// A channel's keys expire after this long without an append or a read; its next event
    /// starts a new epoch. Default 24 hours.
    pub idle_ttl: Duration,
    /// Timeout of each operation (and of connecting). Default 5 s.
    pub operation_timeout: Duration,
    /// Operations in flight at once on the multiplexed connection. Default 64.
    pub max_connections: usize,
    /// Start a new epoch for a channel when the server that appends to it is not the one
    /// that appended last (Redis restarted, was restored from a snapshot, or a replica was
    /// promoted): such a server may have lost acknowledged events, and reusing their offsets
    /// would let a resuming client skip different events under the same ids. Clients then
    /// get an `epoch_changed` gap after every server restart. Turn it off only when Redis
    /// persists every write before answering (`appendfsync always`) and never fails over to
    /// a replica that may lag. Default `true`.
    pub detect_restarts: bool,
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        RedisStoreConfig {
            url: DEFAULT_URL.into(),
            root_certificate_pem: None,
            cluster: false,
            prefix: "realtime:".into(),
            max_events_per_channel: 1_000,
            idle_ttl: Duration::from_secs(24 * 3_600),
            operation_timeout: Duration::from_secs(5),
            max_connections: 64,
            detect_restarts: true,
        }
    }
}

impl RedisStoreConfig {
    pub(crate) fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            root: self.root_certificate_pem.as_deref(),
            cluster: self.cluster,
            timeout: self.operation_timeout,
        }
    }

    /// The defaults, on the server at `url` (the struct is `#[non_exhaustive]`: set other
    /// fields on the value).
    ///
    /// ```
    /// let mut config = realtime_redis::RedisStoreConfig::new("rediss://redis.internal:6380");
    /// config.max_events_per_channel = 10_000;
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreConfig {
            url: url.into(),
            ..RedisStoreConfig::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate_common(
            &self.url,
            self.root_certificate_pem.as_deref(),
            &self.prefix,
            self.operation_timeout,
        )?;
        if self.max_events_per_channel == 0 {
            return Err(invalid("max_events_per_channel", "must be at least 1"));
        }
        if self.idle_ttl < Duration::from_millis(1) {
            return Err(invalid("idle_ttl", "must be at least 1 ms"));
        }
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        Ok(())
    }
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &redact(&self.url))
            .field(
                "root_certificate_pem",
                &self.root_certificate_pem.as_ref().map(|_| "<set>"),
            )
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("max_events_per_channel", &self.max_events_per_channel)
            .field("idle_ttl", &self.idle_ttl)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_connections", &self.max_connections)
            .field("detect_restarts", &self.detect_restarts)
            .finish()
    }
}

/// How [`RedisBus`](crate::RedisBus) connects. Mirrors the Go package's `RedisBusConfig`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBusConfig {
    /// `redis://[user:password@]host:port[/db]`, `rediss://…` for TLS, or
    /// `unix:///path/to/socket`. Default [`DEFAULT_URL`].
    pub url: String,
    /// For `rediss://` (TLS): the PEM certificate of the authority that signed the server's
    /// certificate, trusted instead of the system's roots (a private CA, a managed Redis's
    /// own CA). Default none: the system's roots. Never printed.
    pub root_certificate_pem: Option<Vec<u8>>,
    /// `url` names one node of a Redis Cluster (7.0 or later); the others are found from it.
    /// Keys route by slot (a channel's keys share one through the `{channel}` hash tag) and
    /// the bus uses sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), so a message goes to the
    /// shard that owns its channel rather than to every node. The store and the bus must
    /// agree. Default `false`: one server (or a proxy in front of a cluster).
    pub cluster: bool,
    /// Prefix of every pub/sub channel. Default `realtime:`.
    pub prefix: String,
    /// Timeout of each operation (and of connecting). Default 5 s.
    pub operation_timeout: Duration,
    /// Publishes in flight at once on the multiplexed connection. Default 64.
    pub max_connections: usize,
    /// Messages queued per subscription before it is told it was interrupted (and repairs
    /// from the store). Default 4,096.
    pub subscription_capacity: usize,
    /// How often the subscriber connection is probed with a PING. A connection that fails
    /// the probe is reported down, retried, and replaced after three failures in a row.
    /// Default 1 s.
    pub health_interval: Duration,
    /// The longest wait between two probes while the server is away (the wait doubles from
    /// `health_interval` up to this). Default 5 s.
    pub max_reconnect_backoff: Duration,
}

impl Default for RedisBusConfig {
    fn default() -> Self {
        RedisBusConfig {
            url: DEFAULT_URL.into(),
            root_certificate_pem: None,
            cluster: false,
            prefix: "realtime:".into(),
            operation_timeout: Duration::from_secs(5),
            max_connections: 64,
            subscription_capacity: 4_096,
            health_interval: Duration::from_secs(1),
            max_reconnect_backoff: Duration::from_secs(5),
        }
    }
}

impl RedisBusConfig {
    pub(crate) fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            root: self.root_certificate_pem.as_deref(),
            cluster: self.cluster,
            timeout: self.operation_timeout,
        }
    }

    /// The defaults, on the server at `url` (the struct is `#[non_exhaustive]`: set other
    /// fields on the value).
    pub fn new(url: impl Into<String>) -> Self {
        RedisBusConfig {
            url: url.into(),
            ..RedisBusConfig::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        validate_common(
            &self.url,
            self.root_certificate_pem.as_deref(),
            &self.prefix,
            self.operation_timeout,
        )?;
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if self.subscription_capacity == 0 {
            return Err(invalid("subscription_capacity", "must be at least 1"));
        }
        if self.health_interval < Duration::from_millis(10) {
            return Err(invalid("health_interval", "must be at least 10 ms"));
        }
        if self.max_reconnect_backoff < self.health_interval {
            return Err(invalid(
                "max_reconnect_backoff",
                "must be at least health_interval",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RedisBusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBusConfig")
            .field("url", &redact(&self.url))
            .field(
                "root_certificate_pem",
                &self.root_certificate_pem.as_ref().map(|_| "<set>"),
            )
            .field("cluster", &self.cluster)
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_connections", &self.max_connections)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("health_interval", &self.health_interval)
            .field("max_reconnect_backoff", &self.max_reconnect_backoff)
            .finish()
    }
}

fn invalid(field: &'static str, reason: &str) -> Error {
    Error::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

fn validate_common(url: &str, root: Option<&[u8]>, prefix: &str, timeout: Duration) -> Result<()> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
    {
        return Err(invalid(
            "url",
            "must start with redis://, rediss:// or unix://",
        ));
    }
    if root.is_some() && !url.starts_with("rediss://") {
        return Err(invalid(
            "root_certificate_pem",
            "is for TLS: the URL must start with rediss://",
        ));
    }
    // Braces would break the `{channel}` hash tag that keeps a channel on one cluster slot.
    if prefix.contains(['{', '}']) || prefix.chars().any(char::is_control) {
        return Err(invalid(
            "prefix",
            "must not contain braces or control characters",
        ));
    }
    if timeout < Duration::from_millis(1) {
        return Err(invalid("operation_timeout", "must be at least 1 ms"));
    }
    Ok(())
}

/// The server a configuration names, as compared between a store and a bus: a cluster and a
/// single server behind the same address are not the same place to publish.
pub(crate) fn server_of_endpoint(endpoint: &Endpoint<'_>) -> String {
    let server = server_of(endpoint.url);
    if endpoint.cluster {
        format!("cluster {server}")
    } else {
        server
    }
}

/// The server and database a URL names, with nothing secret: the redacted URL without its
/// query string (where credentials may also be given). Compared to tell whether a store and a
/// bus use the same server.
pub(crate) fn server_of(url: &str) -> String {
    let redacted = redact(url);
    match redacted.split_once('?') {
        Some((server, _)) => server.to_owned(),
        None => redacted,
    }
}

/// The URL with any password replaced by `***` ([`realtime_core::driver::redact_url`]).
pub fn redact(url: &str) -> String {
    realtime_core::driver::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let config = RedisStoreConfig {
            url: "redis://app:s3cret@db.internal:6379/2".into(),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("redis://app:***@db.internal:6379/2"),
            "{shown}"
        );
        assert_eq!(redact("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact("redis://token@h"), "redis://***@h");
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(
            server_of("unix:///run/redis.sock?pass=secret"),
            "unix:///run/redis.sock"
        );
        assert_eq!(
            server_of("redis://u:pw@h:1/2?protocol=resp3"),
            "redis://u:***@h:1/2"
        );
    }

    #[test]
    fn validation() {
        assert!(RedisStoreConfig::default().validate().is_ok());
        assert!(RedisBusConfig::default().validate().is_ok());
        let bad = RedisStoreConfig {
            prefix: "a{b}".into(),
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig {
                field: "prefix",
                ..
            })
        ));
        let bad = RedisBusConfig {
            url: "http://x".into(),
            ..Default::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidConfig { field: "url", .. })
        ));
        let bad = RedisStoreConfig {
            max_events_per_channel: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
