//! The demo's own routes on axum, over [`crate::api`].

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use realtime_sse_axum::ApiError;

use crate::{AppState, api};

/// Refuses a request with more than one `Host` (400), on every route: under any server
/// (`axum::serve` too), not only behind this crate's, whose reading of the head refuses it.
pub(crate) async fn one_host(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        return ApiError(realtime_http::ambiguous_host()).into_response();
    }
    next.run(request).await
}

pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    api::require_json(headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes))?;
    let body = api::read_body(body.into_data_stream()).await?;
    let key = headers.get("idempotency-key").map(HeaderValue::as_bytes);
    let answer = api::publish(&state.manager, key, &body).await?;
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
