//! The demo's own routes on axum, over [`crate::api`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use realtime_sse_axum::ApiError;

use crate::{AppState, api};

pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes);
    let key = headers.get("idempotency-key").map(HeaderValue::as_bytes);
    let body = match body {
        Ok(body) => body,
        // A wrong content type says so first, whatever the body.
        Err(_) if !content_type.is_some_and(|v| v.starts_with(b"application/json")) => Bytes::new(),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError(api::too_large()));
        }
        Err(rejection) => {
            return Err(ApiError::new(
                rejection.status(),
                "invalid_body",
                rejection.body_text(),
            ));
        }
    };
    let answer = api::publish(&state.manager, content_type, key, &body).await?;
    Ok(Json(answer).into_response())
}

pub(crate) async fn stats(State(state): State<AppState>) -> Response {
    Json(api::stats(&state.manager)).into_response()
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

pub(crate) async fn disconnect_all(State(state): State<AppState>) -> Response {
    Json(api::disconnect_all(&state.manager)).into_response()
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let (status, body) = api::readiness(&state.manager).await;
    (status, Json(body)).into_response()
}
