//! The neutral JSON error ([`realtime_http::ApiError`]) as an axum response.

use std::ops::Deref;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An error answered as `{"error": code, "message": text}` with an HTTP status: a
/// [`realtime_http::ApiError`] (the table from [`realtime_core::Error`] lives there, shared by
/// every adapter) that axum handlers can return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(pub realtime_http::ApiError);

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError(realtime_http::ApiError::new(status, code, message))
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError(realtime_http::ApiError::bad_request(code, message))
    }
}

impl Deref for ApiError {
    type Target = realtime_http::ApiError;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<realtime_http::ApiError> for ApiError {
    fn from(error: realtime_http::ApiError) -> Self {
        ApiError(error)
    }
}

impl From<realtime_core::Error> for ApiError {
    fn from(error: realtime_core::Error) -> Self {
        ApiError(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.to_response().map(Body::from)
    }
}
