//! The smallest useful server on axum: SSE at `/events?channel=…`, WebSocket at `/ws`, and
//! `POST /publish/{channel}` publishing its JSON body as JSON data. One process, in-memory
//! history: a browser that reconnects resumes exactly (Last-Event-ID, or the WebSocket
//! client's last ids).
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin minimal_axum
//! curl -N 'http://127.0.0.1:3000/events?channel=orders' &
//! curl -d '{"id": 7}' -H 'content-type: application/json' http://127.0.0.1:3000/publish/orders
//! ```

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use realtime_core::{Manager, PublishRequest};
use realtime_sse_axum::{ApiError, SseHandler};
use realtime_ws::WsHandler;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The in-memory store and bus: everything lives in this process.
    let manager = Manager::builder().build()?;
    let sse = SseHandler::builder(manager.clone()).build()?;
    let ws = WsHandler::builder(manager.clone()).build()?;
    let app = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/publish/{channel}", post(publish))
        .with_state(manager.clone());
    let listener = realtime_scenarios::listen().await?;
    // On Ctrl-C or SIGTERM the manager closes first, so every stream ends and the server can
    // stop (a server that waited for open streams first would wait forever).
    let shutdown = manager.close_on(realtime_scenarios::termination());
    // realtime-sse-axum's server bounds every write (a client that stops reading cannot
    // hold a stream, or the shutdown, forever); `axum::serve` would work without that bound.
    realtime_sse_axum::Server::new()
        .serve(listener, app, shutdown)
        .await;
    // WebSocket sessions run beside the server: let them send their close frames (1001).
    manager
        .drained_within(std::time::Duration::from_secs(5))
        .await;
    Ok(())
}

/// Publishes the body as JSON data: WebSocket clients receive the value itself; invalid
/// input is a 400 with a JSON body. Unauthenticated here, to keep the example short: put it
/// behind your own authentication.
async fn publish(
    State(manager): State<Manager>,
    Path(channel): Path<String>,
    Json(data): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = manager
        .publish(PublishRequest::json(channel, &data)?)
        .await?;
    Ok(Json(serde_json::json!({ "id": event.id })))
}
