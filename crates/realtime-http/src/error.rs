//! HTTP errors as JSON bodies.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use realtime_core::throttle::{Throttle, WARN_EVERY};
use serde::Serialize;

/// An error answered as `{"error": code, "message": text}` with an HTTP status.
///
/// Built from a [`realtime_core::Error`] with the status a client can act on: 400 for bad
/// input, 503 with `Retry-After` when the instance is full or shutting down or a store or bus
/// is unreachable or timed out (`backend_unavailable`: the same request may succeed later),
/// 500 for any other store or bus failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`invalid_channel`, `too_many_connections`, …).
    pub code: &'static str,
    /// A human-readable explanation.
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// This error with `status` instead of 503 if it says the instance is full
    /// (`too_many_connections`): the endpoints' `over_capacity_status` (the Go package
    /// answered 429).
    pub fn over_capacity_as(mut self, status: u16) -> Self {
        if self.code == "too_many_connections" {
            // The endpoints' configs check the range, so this conversion holds.
            self.status = StatusCode::from_u16(status).unwrap_or(self.status);
        }
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl From<realtime_core::auth::Rejection> for ApiError {
    /// The hook's refusal: 401 `unauthorized`, or 403 `forbidden` (or the status it chose).
    fn from(rejection: realtime_core::auth::Rejection) -> Self {
        let status = StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::FORBIDDEN);
        let code = if status == StatusCode::UNAUTHORIZED {
            "unauthorized"
        } else {
            "forbidden"
        };
        Self::new(status, code, rejection.message)
    }
}

impl From<realtime_core::Error> for ApiError {
    fn from(error: realtime_core::Error) -> Self {
        use realtime_core::Error as E;
        let message = error.to_string();
        match &error {
            E::InvalidChannel { .. } => Self::bad_request("invalid_channel", message),
            E::InvalidRequest { .. } => Self::bad_request("invalid_request", message),
            E::TooManyConnections { .. } => ApiError {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_connections",
                    message,
                )
            },
            E::Closed => ApiError {
                retry_after: Some(1),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
            },
            E::UnknownClient(_) => Self::new(StatusCode::NOT_FOUND, "unknown_client", message),
            E::NotBroadcast { .. } => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "not_broadcast", message)
            }
            _ if error.is_retryable() => {
                // One per request while a store or bus is down: a line per interval.
                static UNAVAILABLE: Throttle = Throttle::new(WARN_EVERY);
                if let Some(left_out) = UNAVAILABLE.admit() {
                    tracing::warn!(%error, similar_since_last = left_out, "backend unavailable");
                }
                ApiError {
                    retry_after: Some(1),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "backend_unavailable",
                        message,
                    )
                }
            }
            _ => {
                static FAILURE: Throttle = Throttle::new(WARN_EVERY);
                if let Some(left_out) = FAILURE.admit() {
                    tracing::error!(%error, similar_since_last = left_out, "backend failure");
                }
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "backend_error", message)
            }
        }
    }
}

impl ApiError {
    /// The JSON body `{"error": code, "message": text}`.
    pub fn body(&self) -> Bytes {
        let body = Body {
            error: self.code,
            message: &self.message,
        };
        // Two strings always serialize.
        serde_json::to_vec(&body)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// The whole response: status, `content-type: application/json`, `Retry-After` when set,
    /// and the body.
    pub fn to_response(&self) -> http::Response<Bytes> {
        let mut response = http::Response::new(self.body());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
