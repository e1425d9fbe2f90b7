//! The hand-written baseline: what a Rust user writes without realtime. axum's `Sse` and
//! WebSocket over one `tokio::sync::broadcast` channel, and `POST /publish`.
//!
//! `baseline [--addr HOST:PORT]`; prints `listening on http://ADDR`.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

#[derive(Deserialize)]
struct Publish {
    data: String,
}

async fn events(
    State(tx): State<broadcast::Sender<String>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(tx.subscribe())
        .filter_map(|message| message.ok())
        .map(|data| Ok(Event::default().data(data)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn ws(State(tx): State<broadcast::Sender<String>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| forward(socket, tx.subscribe()))
}

async fn forward(mut socket: WebSocket, mut rx: broadcast::Receiver<String>) {
    loop {
        match rx.recv().await {
            Ok(data) => {
                if socket.send(Message::text(data)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn publish(
    State(tx): State<broadcast::Sender<String>>,
    Json(body): Json<Publish>,
) -> impl IntoResponse {
    let receivers = tx.send(body.data).unwrap_or(0);
    Json(serde_json::json!({ "receivers": receivers }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut addr: SocketAddr = "127.0.0.1:0".parse()?;
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value.parse()?,
            _ => return Err(format!("usage: baseline [--addr HOST:PORT] (got {flag:?})").into()),
        }
    }
    let (tx, _) = broadcast::channel(1024);
    let app = Router::new()
        .route("/events", get(events))
        .route("/ws", get(ws))
        .route("/publish", post(publish))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("listening on http://{}", listener.local_addr()?);
    }
    axum::serve(listener, app).await?;
    Ok(())
}
