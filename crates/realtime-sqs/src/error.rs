//! SQS failures: a private [`SqsFailure`] that names the operation and the channel it failed
//! on, mapped into the public [`BackendError`] (its kind says whether to retry).

use std::fmt;

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use realtime_core::{BackendError, BackendErrorKind};

/// What failed, on which channel, and the client's error (as text and kind: the SDK's error
/// types are per operation).
#[derive(Debug)]
pub(crate) struct SqsFailure {
    /// The operation (`create_queue`, `send`, `receive`, `delete`, `list_queues`…).
    pub(crate) operation: &'static str,
    /// The channel concerned, when the operation has one.
    pub(crate) channel: Option<String>,
    pub(crate) kind: BackendErrorKind,
    pub(crate) detail: String,
}

impl fmt::Display for SqsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.channel {
            Some(channel) => write!(
                f,
                "sqs {} on channel {channel:?} failed: {}",
                self.operation, self.detail
            ),
            None => write!(f, "sqs {} failed: {}", self.operation, self.detail),
        }
    }
}

impl From<SqsFailure> for BackendError {
    fn from(failure: SqsFailure) -> Self {
        BackendError::new("sqs", failure.kind, failure.to_string())
    }
}

/// Whether `error` says the queue is gone (deleted, reaped, or an endpoint that lost its state).
pub(crate) fn queue_missing<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .code()
        .is_some_and(|code| code.contains("NonExistentQueue") || code.contains("QueueDoesNotExist"))
}

/// The kind of an SDK error: timeouts and unreachable endpoints and throttling are
/// retryable; anything else the service refused is not.
fn kind_of<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> BackendErrorKind {
    match error {
        SdkError::TimeoutError(_) => BackendErrorKind::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => BackendErrorKind::Connection,
        SdkError::ServiceError(_) => match error.code() {
            Some(code) if code.contains("Throttl") || code.contains("RequestThrottled") => {
                BackendErrorKind::Connection
            }
            _ if queue_missing(error) => BackendErrorKind::Connection,
            _ => BackendErrorKind::Protocol,
        },
        _ => BackendErrorKind::Protocol,
    }
}

/// Maps an SDK error of `operation` on `channel` (if any) into a [`BackendError`].
pub(crate) fn failed<'a, E, R>(
    operation: &'static str,
    channel: Option<&'a str>,
) -> impl FnOnce(SdkError<E, R>) -> BackendError + 'a
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    move |error| {
        let detail = match error.code() {
            Some(code) => format!("{code}: {}", error.message().unwrap_or_default()),
            None => format!("{error}"),
        };
        SqsFailure {
            operation,
            channel: channel.map(|c| c.chars().take(128).collect()),
            kind: kind_of(&error),
            detail,
        }
        .into()
    }
}

/// `operation` did not finish within its bound: retryable.
pub(crate) fn timed_out(operation: &'static str) -> BackendError {
    BackendError::new(
        "sqs",
        BackendErrorKind::Timeout,
        format!("sqs {operation} timed out"),
    )
}

/// A failure of a request that is not the SDK's (an answer missing what it must carry).
pub(crate) fn malformed(operation: &'static str, what: &str) -> BackendError {
    SqsFailure {
        operation,
        channel: None,
        kind: BackendErrorKind::Protocol,
        detail: what.to_owned(),
    }
    .into()
}
