//! A consumer inside the server process, with no HTTP in between: `Manager::subscribe` gives
//! a `Client` whose `recv` yields the channel's events in order (or a gap). Here it keeps a
//! running total of the `amount` of every order, served at `/total`.
//!
//! Like any client it has a bounded queue: if it falls behind it is disconnected as a slow
//! consumer. It then subscribes again, resuming after the last order it counted, so nothing
//! is counted twice or missed; where the history cannot be replayed (a gap), the total is
//! marked stale instead of silently wrong.
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin in_process_consumer
//! curl -d '{"amount": 5}' -H 'content-type: application/json' http://127.0.0.1:3000/publish/orders
//! curl http://127.0.0.1:3000/total
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use realtime_core::{
    ChannelRequest, CloseReason, Event, Manager, Message, PublishRequest, SubscribeRequest,
};
use realtime_sse_axum::ApiError;

#[derive(Clone, Default)]
struct Total {
    amount: Arc<AtomicU64>,
    stale: Arc<AtomicBool>,
}

impl Total {
    fn count(&self, event: &Event) {
        let amount = serde_json::from_slice::<serde_json::Value>(&event.data)
            .ok()
            .and_then(|order| order["amount"].as_u64())
            .unwrap_or_default();
        let _ = self
            .amount
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| {
                Some(total.saturating_add(amount))
            });
    }
}

#[derive(Clone)]
struct AppState {
    manager: Manager,
    total: Total,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let total = Total::default();
    // Subscribed before the server listens: it sees every order published through it.
    let first = manager
        .subscribe(SubscribeRequest::channel("orders"))
        .await?;
    let consumer = tokio::spawn(consume(manager.clone(), first, total.clone()));
    let state = AppState {
        manager: manager.clone(),
        total,
    };
    let app = Router::new()
        .route("/publish/{channel}", post(publish))
        .route("/total", get(report))
        .with_state(state);
    let listener = realtime_scenarios::listen().await?;
    let shutdown = manager.close_on(realtime_scenarios::termination());
    realtime_sse_axum::Server::new()
        .serve(listener, app, shutdown)
        .await;
    consumer.await?;
    Ok(())
}

/// Counts orders until the manager shuts down, subscribing again (resumed) after any other
/// disconnection.
async fn consume(manager: Manager, first: realtime_core::Subscription, total: Total) {
    let mut subscription = first;
    let mut last: Option<String> = None;
    loop {
        for replay in subscription.replay {
            if replay.gap.is_some() {
                total.stale.store(true, Ordering::Relaxed);
            }
            for event in &replay.events {
                total.count(event);
                last = Some(event.id.to_token());
            }
        }
        let mut client = subscription.client;
        // `recv` ends (None) when the client is closed.
        while let Some(message) = client.recv().await {
            match message {
                Message::Event(event) => {
                    total.count(&event);
                    last = Some(event.id.to_token());
                }
                // Orders were lost to this consumer: the total can no longer be trusted.
                Message::Gap(gap) => {
                    eprintln!("orders missed up to {}: {:?}", gap.head, gap.reason);
                    total.stale.store(true, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        if client.close_reason() == Some(CloseReason::Shutdown) {
            return;
        }
        // Disconnected (too slow, or by an operator): resume after the last order counted.
        let channel = match &last {
            Some(id) => ChannelRequest::resume("orders", id.as_str()),
            None => ChannelRequest::live("orders"),
        };
        let request = SubscribeRequest {
            channels: vec![channel],
            ..SubscribeRequest::default()
        };
        match manager.subscribe(request).await {
            Ok(next) => subscription = next,
            Err(error) => {
                eprintln!("the order consumer stops: {error}");
                total.stale.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

async fn report(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "total": state.total.amount.load(Ordering::Relaxed),
        "stale": state.total.stale.load(Ordering::Relaxed),
    }))
}

/// Publishes the body as JSON data. Unauthenticated here, to keep the example short: put it
/// behind your own authentication (it can reach every client of the channel).
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
