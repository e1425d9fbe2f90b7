//! Graceful shutdown on SIGTERM, as an orchestrator stops a process: readiness fails at once,
//! every stream ends — SSE clients reconnect
//! elsewhere and resume with `Last-Event-ID`, WebSocket clients get close code 1001 — the
//! server stops, and the process waits (a bounded time) for WebSocket sessions to send their
//! close frames before it exits 0. (Behind a load balancer that polls readiness, fail
//! readiness first and wait one polling period before closing, so no new client arrives at a
//! closing instance: the server stops accepting as soon as the manager has closed.)
//!
//! ```sh
//! cargo run -p realtime-scenarios --bin graceful_shutdown &
//! curl -N 'http://127.0.0.1:3000/events?channel=orders' &
//! kill -TERM %1      # the stream ends, the process exits 0
//! ```

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use realtime_core::Manager;
use realtime_sse_axum::SseHandler;
use realtime_ws::WsHandler;

/// How long WebSocket sessions get to send their close frames.
const GRACE: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::builder().build()?;
    let sse = SseHandler::builder(manager.clone()).build()?;
    let ws = WsHandler::builder(manager.clone()).build()?;
    let app = Router::new()
        .route("/events", sse.get())
        .route("/ws", ws.get())
        .route("/readyz", get(readyz))
        .with_state(manager.clone());
    let listener = realtime_scenarios::listen().await?;
    // 1. the signal; 2. the manager closes: readiness fails, every stream ends;
    // 3. the server stops accepting and finishes its requests.
    let shutdown = manager.close_on(realtime_scenarios::termination());
    // realtime-sse-axum's server bounds every write: a client that stopped reading cannot
    // hold the shutdown (under `axum::serve` it could, for as long as its TCP connection lives).
    realtime_sse_axum::Server::new()
        .serve(listener, app, shutdown)
        .await;
    // 4. WebSocket sessions run beside the server: wait for their close frames, bounded.
    if !manager.drained_within(GRACE).await {
        eprintln!("some clients did not leave within {GRACE:?}");
    }
    Ok(())
}

/// 200 while this instance can serve (open, store and bus reachable), 503 once it closes.
async fn readyz(State(manager): State<Manager>) -> StatusCode {
    if manager.ready().await.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
