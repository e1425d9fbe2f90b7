//! What the demo's own routes do, whatever framework serves them: the axum routes
//! (`routes.rs`) and the actix-web ones (`actix.rs`) are thin wrappers.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::StatusCode;
use realtime_core::{DataFormat, Manager, PublishRequest};
use realtime_http::ApiError;
use serde::Deserialize;

/// Largest `/publish` body read (the event's payload limit, 1 MiB, and room for the rest).
pub(crate) const MAX_BODY: usize = 2 << 20;

/// `POST /publish` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishBody {
    channel: String,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Any JSON value: a string is published as text, anything else as JSON data
    /// (WebSocket clients receive the value itself).
    #[serde(default)]
    data: Option<Box<serde_json::value::RawValue>>,
    /// Instead of `data`: bytes, in standard base64, published as binary data.
    data_base64: Option<String>,
    tenant: Option<String>,
    subject: Option<String>,
    /// Or the `Idempotency-Key` header: a retry with the same key returns the first id.
    idempotency_key: Option<String>,
}

/// How long a client may take to send a `/publish` body (neither framework bounds it).
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// `/publish` takes only JSON (a cross-site HTML form cannot publish): 415 otherwise, checked
/// before the body is read.
pub(crate) fn require_json(content_type: Option<&[u8]>) -> Result<(), ApiError> {
    let is_json = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the event as `content-type: application/json`",
    ))
}

/// Reads a request body: at most [`MAX_BODY`] bytes (413 past it), within [`BODY_TIMEOUT`]
/// (408 after it).
pub(crate) async fn read_body<E: std::fmt::Display>(
    mut chunks: impl Stream<Item = Result<Bytes, E>> + Unpin,
) -> Result<Vec<u8>, ApiError> {
    let read = async {
        let mut body = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("the body did not arrive within {BODY_TIMEOUT:?}"),
            ))
        })
}

/// `POST /publish` (its content type checked with [`require_json`] and its body read with
/// [`read_body`]): answers `{"id", "channel"}`.
pub(crate) async fn publish(
    manager: &Manager,
    idempotency_key: Option<&[u8]>,
    body: &[u8],
) -> Result<serde_json::Value, ApiError> {
    let body: PublishBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?;
    let (data, format) = payload(body.data, body.data_base64)?;
    let header_key = idempotency_key
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .filter(|v| v.bytes().all(|b| (0x20..0x7f).contains(&b)))
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "Idempotency-Key must be visible ASCII",
                    )
                })
        })
        .transpose()?;
    let mut request = PublishRequest::new(body.channel, data);
    request.format = format;
    request.event_type = body.event_type;
    request.tenant = body.tenant;
    request.subject = body.subject;
    request.idempotency_key = header_key.or(body.idempotency_key);
    let event = manager.publish(request).await?;
    Ok(serde_json::json!({
        "id": event.id,
        "channel": realtime_core::routing::channel_name(&event.channel),
    }))
}

/// The payload of a `/publish` body: exactly one of `data` (a string is text, any other JSON
/// value is JSON data, kept as written) and `data_base64` (binary data).
fn payload(
    data: Option<Box<serde_json::value::RawValue>>,
    data_base64: Option<String>,
) -> Result<(Vec<u8>, DataFormat), ApiError> {
    let one = |message| Err(ApiError::bad_request("invalid_request", message));
    match (data, data_base64) {
        (Some(_), Some(_)) => one("send `data` or `data_base64`, not both"),
        (None, None) => one("data is required"),
        (None, Some(base64)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(base64)
                .map(|bytes| (bytes, DataFormat::Binary))
                .map_err(|e| ApiError::bad_request("invalid_request", format!("data_base64: {e}")))
        }
        (Some(json), None) => match serde_json::from_str::<String>(json.get()) {
            Ok(text) => Ok((text.into_bytes(), DataFormat::Text)),
            Err(_) => Ok((json.get().as_bytes().to_vec(), DataFormat::Json)),
        },
    }
}

/// A body larger than [`MAX_BODY`].
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds {MAX_BODY} bytes"),
    )
}

/// `GET /stats`.
pub(crate) fn stats(manager: &Manager) -> serde_json::Value {
    serde_json::json!({
        "connections": manager.connection_count(),
        "channels": manager.channel_count(),
    })
}

/// `POST /admin/disconnect-all`: ends every open stream, as a restart or a proxy timeout
/// would. Browsers reconnect by themselves with `Last-Event-ID`. A demo and test aid.
pub(crate) fn disconnect_all(manager: &Manager) -> serde_json::Value {
    serde_json::json!({"disconnected": manager.disconnect_all()})
}

/// `GET /readyz`: 200 when the manager is open and its store and bus can serve, else 503
/// with what failed — for a load balancer to stop sending clients here.
pub(crate) async fn readiness(manager: &Manager) -> (StatusCode, serde_json::Value) {
    let readiness = manager.ready().await;
    let part = |result: &realtime_core::Result<()>| match result {
        Ok(()) => "ok".to_owned(),
        Err(error) => error.to_string(),
    };
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "store": part(&readiness.store),
        "bus": part(&readiness.bus),
    });
    (status, body)
}
