//! AMQP failures: a private [`AmqpFailure`] that names the operation and the channel it
//! failed on, mapped into the public [`BackendError`] (its kind says whether to retry).

use std::fmt;

use realtime_core::{BackendError, BackendErrorKind, Error};

/// What failed, on which channel, of which kind, and why.
#[derive(Debug)]
pub(crate) struct AmqpFailure {
    /// The operation (`connect`, `publish`, `subscribe`…).
    pub(crate) operation: &'static str,
    /// The channel concerned, when the operation has one.
    pub(crate) channel: Option<String>,
    pub(crate) kind: BackendErrorKind,
    pub(crate) detail: String,
}

impl fmt::Display for AmqpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.channel {
            Some(channel) => write!(
                f,
                "amqp {} on channel {channel:?} failed: {}",
                self.operation, self.detail
            ),
            None => write!(f, "amqp {} failed: {}", self.operation, self.detail),
        }
    }
}

impl From<AmqpFailure> for BackendError {
    fn from(failure: AmqpFailure) -> Self {
        BackendError::new("amqp", failure.kind, failure.to_string())
    }
}

/// `operation` on `channel` (if any) failed with `detail`, of `kind`.
pub(crate) fn failed(
    operation: &'static str,
    channel: Option<&str>,
    kind: BackendErrorKind,
    detail: impl fmt::Display,
) -> Error {
    BackendError::from(AmqpFailure {
        operation,
        channel: channel.map(|c| c.chars().take(128).collect()),
        kind,
        detail: detail.to_string(),
    })
    .into()
}

/// `operation` did not finish within its bound: retryable.
pub(crate) fn timed_out(operation: &'static str, channel: Option<&str>) -> Error {
    failed(
        operation,
        channel,
        BackendErrorKind::Timeout,
        "no answer from the broker in time",
    )
}

/// The connection is down (the bus is reconnecting): retryable.
pub(crate) fn disconnected(operation: &'static str, channel: Option<&str>) -> Error {
    failed(
        operation,
        channel,
        BackendErrorKind::Connection,
        "not connected to the broker; the bus reconnects by itself",
    )
}

/// A client error: the connection is gone or broken (retryable), unless the broker
/// refused the credentials (`ACCESS_REFUSED`: retrying with them will not help).
pub(crate) fn lost(operation: &'static str, channel: Option<&str>, error: lapin::Error) -> Error {
    let detail = error.to_string();
    let kind = if detail.contains("ACCESS_REFUSED") || detail.contains("ACCESS-REFUSED") {
        BackendErrorKind::Config
    } else {
        BackendErrorKind::Connection
    };
    failed(operation, channel, kind, detail)
}
