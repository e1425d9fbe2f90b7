//! One of several instances sharing Redis: Redis is the shared history (Streams) and the bus
//! (pub/sub), so an event published on any instance reaches clients on every instance, and a
//! client that reconnects to another instance resumes exactly from its last id.
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin two_instances_redis -- 127.0.0.1:3001 redis://127.0.0.1:6379 &
//! cargo run -p realtime-scenarios --bin two_instances_redis -- 127.0.0.1:3002 redis://127.0.0.1:6379 &
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
    let url = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
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
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

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
