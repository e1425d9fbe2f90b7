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

/// Runs `op`, and once more if it failed with an error `retry` accepts. After an outage the
/// first command on a connection manager returns the failure of its last reconnect attempt
/// (and only starts a new one); the second finds the server again.
pub(crate) async fn once_more<T, F>(
    retry: impl Fn(&redis::RedisError) -> bool,
    mut op: impl FnMut() -> F,
) -> redis::RedisResult<T>
where
    F: std::future::Future<Output = redis::RedisResult<T>>,
{
    match op().await {
        Err(error) if retry(&error) => op().await,
        result => result,
    }
}

/// A failure of the connection itself (dropped, refused, broken), not of the command.
pub(crate) fn reconnectable(error: &redis::RedisError) -> bool {
    error.is_connection_refusal() || error.is_connection_dropped() || error.is_io_error()
}
