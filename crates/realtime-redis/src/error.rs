//! Redis failures as [`BackendError`]s.

use realtime_core::{BackendError, BackendErrorKind};

/// Classifies a client error: connection and timeout failures are retryable.
pub(crate) fn from_redis(error: redis::RedisError) -> BackendError {
    let kind = if error.is_timeout() {
        BackendErrorKind::Timeout
    } else if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal()
    {
        BackendErrorKind::Connection
    } else {
        BackendErrorKind::Protocol
    };
    BackendError::new("redis", kind, "redis operation failed").with_source(error)
}

/// A failure to connect at start-up, with a hint on how to start a local server.
pub(crate) fn connect_failed(url: &str, error: redis::RedisError) -> BackendError {
    let kind = if error.is_timeout() {
        BackendErrorKind::Timeout
    } else {
        BackendErrorKind::Connection
    };
    BackendError::new(
        "redis",
        kind,
        format!(
            "cannot connect to {}; is Redis running? (start one with `redis-server --daemonize yes --port 6379`)",
            crate::config::redact(url)
        ),
    )
    .with_source(error)
}
