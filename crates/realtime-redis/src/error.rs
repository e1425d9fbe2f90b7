//! Redis failures: a private [`RedisFailure`] that names the operation and the channel it
//! failed on, mapped into the public [`BackendError`] (its kind says whether to retry).

use std::fmt;

use realtime_core::{BackendError, BackendErrorKind};

/// What failed, on which channel, and the client's error.
#[derive(Debug)]
pub(crate) struct RedisFailure {
    /// The operation as the crate's docs name it (`append`, `read`, `publish`, `subscribe`…).
    pub(crate) operation: &'static str,
    /// The channel concerned, when the operation has one.
    pub(crate) channel: Option<String>,
    pub(crate) source: redis::RedisError,
}

impl fmt::Display for RedisFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.channel {
            Some(channel) => write!(f, "redis {} on channel {channel:?} failed", self.operation),
            None => write!(f, "redis {} failed", self.operation),
        }
    }
}

impl From<RedisFailure> for BackendError {
    /// Connection and timeout failures are retryable; anything else is the server refusing.
    fn from(failure: RedisFailure) -> Self {
        let error = &failure.source;
        let kind = if error.is_timeout() {
            BackendErrorKind::Timeout
        } else if reconnectable(error) || cluster_in_transition(error) {
            BackendErrorKind::Connection
        } else {
            BackendErrorKind::Protocol
        };
        let message = failure.to_string();
        BackendError::new("redis", kind, message).with_source(failure.source)
    }
}

/// Maps a client error of `operation` on `channel` (if any) into a [`BackendError`]; costs
/// nothing until an error is mapped.
pub(crate) fn failed<'a>(
    operation: &'static str,
    channel: Option<&'a str>,
) -> impl FnOnce(redis::RedisError) -> BackendError + 'a {
    move |source| {
        RedisFailure {
            operation,
            channel: channel.map(|c| c.chars().take(128).collect()),
            source,
        }
        .into()
    }
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

/// A cluster answering while a slot changes hands (a failover, a resharding): retrying soon
/// finds the slot's new master.
fn cluster_in_transition(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    error.is_cluster_error()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::MasterDown
                        | ServerErrorKind::ReadOnly
                        | ServerErrorKind::BusyLoading
                )
        )
}

/// A failure of the connection itself (dropped, refused, broken), not of the command.
pub(crate) fn reconnectable(error: &redis::RedisError) -> bool {
    error.is_connection_refusal() || error.is_connection_dropped() || error.is_io_error()
}
