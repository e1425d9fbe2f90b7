//! One of several instances sharing Redis: Redis is the shared history (Streams) and the bus
//! (pub/sub), so an event published on any instance reaches clients on every instance, and a
//! client that reconnects to another instance resumes exactly from its last id.
//!
//! ```sh
//! export REDIS_URL=redis://127.0.0.1:6379   # from the environment: a password stays out of `ps`
//! cargo run -p realtime-scenarios --bin two_instances_redis -- 127.0.0.1:3001 &
//! cargo run -p realtime-scenarios --bin two_instances_redis -- 127.0.0.1:3002 &
//! curl -N 'http://127.0.0.1:3002/events?channel=orders' &
//! curl -d '{"id": 7}' -H 'content-type: application/json' http://127.0.0.1:3001/publish/orders
//! ```

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use realtime_core::{Manager, PublishRequest};
use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};
use realtime_sse_axum::{ApiError, SseHandler};
use realtime_ws::WsHandler;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut store_config = RedisStoreConfig::default();
    store_config.url = url.clone();
    let mut bus_config = RedisBusConfig::default();
    bus_config.url = url;
    // Both fail fast, with a typed error, if Redis is not there.
    let store = RedisStore::connect(store_config).await?;
    let bus = RedisBus::connect(bus_config).await?;
    let manager = Manager::builder()
        .store(Arc::new(store))
        .bus(Arc::new(bus))
        .build()?;
    let sse = SseHandler::builder(manager.clone()).build()?;
    let ws = WsHandler::builder(manager.clone()).build()?;
    let app = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/publish/{channel}", post(publish))
        .with_state(manager.clone());
    let listener = realtime_scenarios::listen().await?;
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

/// Publishes the body as JSON data. Unauthenticated here, to keep the example short: put it
/// behind your own authentication (it can reach every client of the channel).
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
