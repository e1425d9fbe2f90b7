//! AMQP failures mapped into the public [`BackendError`] (its kind says whether to retry).

use realtime_core::{BackendError, BackendErrorKind, Error};

/// `operation` on `channel` (if any) failed with `detail`, of `kind`.
pub(crate) fn failed(
    operation: &'static str,
    channel: Option<&str>,
    kind: BackendErrorKind,
    detail: impl std::fmt::Display,
) -> Error {
    let message = match channel {
        Some(channel) => {
            let channel: String = channel.chars().take(128).collect();
            format!("amqp {operation} on channel {channel:?} failed: {detail}")
        }
        None => format!("amqp {operation} failed: {detail}"),
    };
    BackendError::new("amqp", kind, message).into()
}

/// A client error: the connection is gone or broken (retryable).
pub(crate) fn lost(operation: &'static str, channel: Option<&str>, error: lapin::Error) -> Error {
    failed(operation, channel, BackendErrorKind::Connection, error)
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
