//! The client's one error type.

use std::time::Duration;

/// Most of a refusal's body kept for its error.
pub(crate) const MAX_REFUSAL_BODY: usize = 4096;

/// What went wrong with a connection or a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (checked by [`ClientBuilder::build`](crate::ClientBuilder::build)).
    #[error("invalid client configuration: {field}: {reason}")]
    InvalidConfig {
        /// The setting at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The server answered the request with an error status (and usually a JSON body
    /// `{"error","message"}`).
    #[error("refused with status {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The body, as far as it was read.
        body: String,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The server refused a subscription on an open WebSocket (`invalid_topic`, `forbidden`…).
    #[error("subscription refused: {code}: {message}")]
    SubscriptionRefused {
        /// The protocol's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server sent something this client cannot read, or more than it may hold. Five in a
    /// row before a connection gets as far as connected (the same replay failing each time)
    /// end the stream.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Nothing whole arrived for the idle timeout (not even a heartbeat; over SSE, bytes that
    /// finish no frame do not count).
    #[error("no traffic for {0:?}")]
    Idle(Duration),
    /// The server closed the WebSocket with this code.
    #[error("closed by the server ({code}: {reason})")]
    Closed {
        /// The close code (1000 disconnected, 1001 shutdown, 1013 slow consumer…).
        code: u16,
        /// The close reason.
        reason: String,
    },
}

impl Error {
    /// Whether reconnecting may help: the client retries these by itself, and ends its
    /// stream on the others (a bad configuration, a refusal that will not change: 400, 401,
    /// 403, 404, a subscription refused as invalid or forbidden).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::InvalidConfig { .. } => false,
            // `subscribe_failed` (a shutdown, a slow store) passes; these do not.
            Error::SubscriptionRefused { code, .. } => !matches!(
                code.as_str(),
                "invalid_topic" | "too_many_topics" | "unauthorized" | "forbidden"
            ),
            Error::Refused { status, .. } => matches!(status, 408 | 425 | 429) || *status >= 500,
            Error::Connect(_) | Error::Protocol(_) | Error::Idle(_) | Error::Closed { .. } => true,
        }
    }

    /// The refusal of a request answered with `status`, its `Retry-After` value (seconds) and
    /// the start of its body (at most [`MAX_REFUSAL_BODY`] bytes kept).
    pub(crate) fn refused(status: u16, retry_after: Option<&str>, body: &[u8]) -> Self {
        let body = &body[..body.len().min(MAX_REFUSAL_BODY)];
        Error::Refused {
            status,
            body: String::from_utf8_lossy(body).into_owned(),
            retry_after: retry_after
                .and_then(|v| v.trim().parse().ok())
                .map(Duration::from_secs),
        }
    }

    /// A connection failure with its causes (`error sending request: … invalid peer
    /// certificate: UnknownIssuer`): the outermost message alone rarely says what failed.
    pub(crate) fn connect(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            // Some layers repeat their cause in their own message.
            if !message.contains(&cause_text) {
                message.push_str(": ");
                message.push_str(&cause_text);
            }
            source = cause.source();
        }
        // A hostile certificate can list thousands of names, all quoted by the error.
        if message.len() > MAX_REFUSAL_BODY {
            let mut end = MAX_REFUSAL_BODY;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        Error::Connect(message)
    }

    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field,
            reason: reason.into(),
        }
    }
}
