//! A consumer inside the server process, with no HTTP in between: `Manager::subscribe` gives
//! a `Client` whose `recv` yields the channel's events in order (or a gap). Here it keeps a
//! running total of the `amount` of every order, served at `/total`.
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin in_process_consumer
//! curl -d '{"amount": 5}' -H 'content-type: application/json' http://127.0.0.1:3000/publish/orders
//! curl http://127.0.0.1:3000/total
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use realtime_core::{Manager, Message, PublishRequest, SubscribeRequest};
use realtime_sse_axum::ApiError;

#[derive(Clone)]
struct AppState {
    manager: Manager,
    total: Arc<AtomicU64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let total = Arc::new(AtomicU64::new(0));
    // Subscribed before anything is published: it sees every order from here on.
    let mut orders = manager
        .subscribe(SubscribeRequest::channel("orders"))
        .await?
        .client;
    let counted = total.clone();
    let consumer = tokio::spawn(async move {
        // `recv` ends (None) when the manager closes.
        while let Some(message) = orders.recv().await {
            match message {
                Message::Event(event) => {
                    let amount = serde_json::from_slice::<serde_json::Value>(&event.data)
                        .ok()
                        .and_then(|order| order["amount"].as_u64())
                        .unwrap_or_default();
                    counted.fetch_add(amount, Ordering::Relaxed);
                }
                // A consumer that must not miss anything reacts to a gap: here, log it.
                Message::Gap(gap) => {
                    eprintln!("missed orders up to {}: {:?}", gap.head, gap.reason)
                }
                _ => {}
            }
        }
    });
    let state = AppState {
        manager: manager.clone(),
        total,
    };
    let app = Router::new()
        .route("/publish/{channel}", post(publish))
        .route(
            "/total",
            get(|State(state): State<AppState>| async move {
                Json(serde_json::json!({ "total": state.total.load(Ordering::Relaxed) }))
            }),
        )
        .with_state(state);
    let listener = realtime_scenarios::listen().await?;
    let shutdown = manager.close_on(realtime_scenarios::termination());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    consumer.await?;
    Ok(())
}

async fn publish(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    Json(data): Json<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = state
        .manager
        .publish(PublishRequest::json(channel, &data)?)
        .await?;
    Ok(Json(serde_json::json!({ "id": event.id })))
}
