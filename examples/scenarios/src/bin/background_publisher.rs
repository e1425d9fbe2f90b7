//! A background task that publishes: here a tick every 200 ms on `ticks`, as JSON. It stops
//! when the manager closes (publishing then fails with `Error::Closed`), so shutdown needs no
//! extra signal. A publish that may succeed later is skipped with one log line per run of
//! failures; an event stored but not yet handed to the bus (`NotBroadcast`) is published (the
//! manager retries the bus). A refusal that will not change stops the whole process, non-zero,
//! rather than leaving a server that quietly publishes nothing.
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
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let sse = SseHandler::builder(manager.clone()).build()?;
    let ws = WsHandler::builder(manager.clone()).build()?;
    let app: Router = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get());
    let (failed, publisher_failed) = oneshot::channel();
    let publisher = tokio::spawn(publish_ticks(
        manager.clone(),
        Duration::from_millis(200),
        failed,
    ));
    let listener = realtime_scenarios::listen().await?;
    // Stop on a signal, or when the publisher cannot go on.
    let stop = async {
        tokio::select! {
            () = realtime_scenarios::termination() => {}
            _ = publisher_failed => {}
        }
    };
    let shutdown = manager.close_on(stop);
    realtime_sse_axum::Server::new()
        .serve(listener, app, shutdown)
        .await;
    manager.drained_within(Duration::from_secs(5)).await;
    match publisher.await? {
        Ok(()) => Ok(()),
        Err(error) => Err(format!("the publisher stopped: {error}").into()),
    }
}

/// Publishes `{"n": 1}`, `{"n": 2}`, … every `every` until the manager closes; on a refusal
/// that will not change, says so through `failed` and returns it.
async fn publish_ticks(
    manager: Manager,
    every: Duration,
    failed: oneshot::Sender<()>,
) -> Result<(), Error> {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    for n in 1u64.. {
        ticks.tick().await;
        let request = PublishRequest::json("ticks", &serde_json::json!({ "n": n }))?;
        match manager.publish(request).await {
            // Stored; the bus hand-off is retried by the manager.
            Ok(_) | Err(Error::NotBroadcast { .. }) => failing = false,
            Err(Error::Closed) => return Ok(()),
            Err(error) if error.is_retryable() => {
                if !failing {
                    eprintln!("publishing ticks fails ({error}); skipping until it works");
                }
                failing = true;
            }
            Err(error) => {
                let _ = failed.send(());
                return Err(error);
            }
        }
    }
    Ok(())
}
