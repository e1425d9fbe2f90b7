//! The demo's own routes: publishing, stats, metrics and a test aid.

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, body::Bytes};
use realtime_core::PublishRequest;
use realtime_sse_axum::ApiError;
use serde::Deserialize;

use crate::AppState;

/// `POST /publish` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    channel: String,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Any JSON value; a string is sent as its text, anything else as its JSON.
    data: serde_json::Value,
    tenant: Option<String>,
    subject: Option<String>,
    /// Or the `Idempotency-Key` header: a retry with the same key returns the first id.
    idempotency_key: Option<String>,
}

pub(crate) async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Only JSON: a cross-site HTML form (text/plain, form-urlencoded) cannot publish.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the event as `content-type: application/json`",
        ));
    }
    let body = body.map_err(|rejection| {
        let code = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "invalid_body"
        };
        ApiError::new(rejection.status(), code, rejection.body_text())
    })?;
    let body: PublishBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
    let data = match body.data {
        serde_json::Value::String(text) => text,
        serde_json::Value::Null => {
            return Err(ApiError::bad_request("invalid_request", "data is required"));
        }
        other => other.to_string(),
    };
    let header_key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::bad_request("invalid_request", "Idempotency-Key must be visible ASCII")
            })
        })
        .transpose()?;
    let mut request = PublishRequest::new(body.channel, data);
    request.event_type = body.event_type;
    request.tenant = body.tenant;
    request.subject = body.subject;
    request.idempotency_key = header_key.or(body.idempotency_key);
    let event = state.manager.publish(request).await?;
    Ok(Json(serde_json::json!({
        "id": event.id,
        "channel": realtime_core::routing::channel_name(&event.channel),
    }))
    .into_response())
}

pub(crate) async fn stats(State(state): State<AppState>) -> Response {
    Json(serde_json::json!({
        "connections": state.manager.connection_count(),
        "channels": state.manager.channel_count(),
    }))
    .into_response()
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// `POST /admin/disconnect-all`: ends every open stream, as a restart or a proxy timeout
/// would. Browsers reconnect by themselves with `Last-Event-ID`. A demo and test aid.
pub(crate) async fn disconnect_all(State(state): State<AppState>) -> Response {
    let ended = state.manager.disconnect_all();
    (
        StatusCode::OK,
        Json(serde_json::json!({"disconnected": ended})),
    )
        .into_response()
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when the manager is open and its store and bus can serve, else 503
/// with what failed — for a load balancer to stop sending clients here.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let readiness = state.manager.ready().await;
    let part = |result: &realtime_core::Result<()>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "store": part(&readiness.store),
            "bus": part(&readiness.bus),
        })),
    )
        .into_response()
}
