//! NATS failures mapped into the public [`BackendError`] (its kind says whether to retry).

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
            format!("nats {operation} on channel {channel:?} failed: {detail}")
        }
        None => format!("nats {operation} failed: {detail}"),
    };
    BackendError::new("nats", kind, message).into()
}

/// `operation` did not finish within its bound: retryable.
pub(crate) fn timed_out(operation: &'static str, channel: Option<&str>) -> Error {
    failed(
        operation,
        channel,
        BackendErrorKind::Timeout,
        "no answer from the server in time",
    )
}

/// The connection is down (the client is reconnecting): retryable.
pub(crate) fn disconnected(operation: &'static str, channel: Option<&str>) -> Error {
    failed(
        operation,
        channel,
        BackendErrorKind::Connection,
        "not connected to the server; the bus reconnects by itself",
    )
}
