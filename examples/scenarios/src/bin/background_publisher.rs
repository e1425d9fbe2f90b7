//! A background task that publishes: here a tick every 200 ms on `ticks`, as JSON. It stops
//! when the manager closes (publishing then fails with `Error::Closed`), so shutdown needs no
//! extra signal. A failed publish that may succeed later (`is_retryable`) is logged and the
//! task goes on.
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin background_publisher
//! curl -N 'http://127.0.0.1:3000/events?channel=ticks'
//! ```

use std::time::Duration;

use axum::Router;
use realtime_core::{Error, Manager, PublishRequest};
use realtime_sse_axum::SseHandler;
use realtime_ws::WsHandler;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let sse = SseHandler::builder(manager.clone()).build()?;
    let ws = WsHandler::builder(manager.clone()).build()?;
    let app: Router = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get());
    let publisher = tokio::spawn(publish_ticks(manager.clone(), Duration::from_millis(200)));
    let listener = realtime_scenarios::listen().await?;
    let shutdown = manager.close_on(realtime_scenarios::termination());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    publisher.await?;
    Ok(())
}

/// Publishes `{"n": 1}`, `{"n": 2}`, … every `every` until the manager closes.
async fn publish_ticks(manager: Manager, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 1u64.. {
        ticks.tick().await;
        let Ok(request) = PublishRequest::json("ticks", &serde_json::json!({ "n": n })) else {
            continue;
        };
        match manager.publish(request).await {
            Ok(_) => {}
            Err(Error::Closed) => return,
            Err(error) if error.is_retryable() => {
                eprintln!("tick {n} not published ({error}); going on");
            }
            Err(error) => {
                eprintln!("tick {n} refused: {error}");
                return;
            }
        }
    }
}
