//! One connected WebSocket on axum: the socket loop around the neutral
//! [`WsSession`](realtime_http::ws::WsSession) — writes with a timeout, pings, keepalives,
//! and tungstenite's read errors mapped to close codes.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use realtime_http::ws::{Outgoing, WsSession, close_code};
use tokio::time::{Instant, MissedTickBehavior, interval_at};

/// Bytes written before a flush within one batch.
const FLUSH_BYTES: usize = 64 * 1024;

enum Outcome {
    Continue,
    Close(u16, &'static str),
    Gone,
}

pub(crate) async fn run(
    mut socket: WebSocket,
    mut session: WsSession,
    write_timeout: Duration,
    heartbeat: Duration,
    keepalive_interval: Option<Duration>,
) {
    let mut ping = interval_at(Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let keepalive_every = keepalive_interval.unwrap_or(Duration::from_secs(3_600));
    let mut keepalive = interval_at(Instant::now() + keepalive_every, keepalive_every);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let greeting = [session.greeting()];
    let mut outcome = write(&mut socket, greeting, write_timeout).await;
    while matches!(outcome, Outcome::Continue) {
        outcome = tokio::select! {
            outgoing = session.next_outgoing() => match outgoing {
                Outgoing::Messages(messages) => write(&mut socket, messages, write_timeout).await,
                Outgoing::Close(code, reason) => Outcome::Close(code, reason),
            },
            incoming = socket.recv() => match incoming {
                None | Some(Ok(Frame::Close(_))) => Outcome::Gone,
                Some(Ok(Frame::Text(text))) => {
                    let replies = session.on_text(text.as_str()).await;
                    write(&mut socket, replies, write_timeout).await
                }
                Some(Ok(Frame::Binary(_))) => {
                    write(&mut socket, [session.binary_refused()], write_timeout).await
                }
                Some(Ok(_)) => Outcome::Continue,
                Some(Err(error)) => read_failure(error),
            },
            _ = ping.tick() => timed_write(write_timeout, socket.send(Frame::Ping(Bytes::new()))).await,
            _ = keepalive.tick(), if keepalive_interval.is_some() => {
                write(&mut socket, [session.keepalive()], write_timeout).await
            }
        };
    }
    if let Outcome::Close(code, reason) = outcome {
        tracing::debug!(
            client = session.client_id(),
            code,
            reason,
            "closing websocket"
        );
        let close = Frame::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(write_timeout, socket.send(close)).await;
    }
}

/// Maps a read error to the close code the client should see.
fn read_failure(error: axum::Error) -> Outcome {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            Outcome::Close(close_code::TOO_BIG, "message too big")
        }
        Some(tungstenite::Error::Utf8(_)) => {
            Outcome::Close(close_code::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        _ => {
            tracing::debug!(error = %inner, "websocket read failed");
            Outcome::Gone
        }
    }
}

/// Writes `messages` as text frames, flushing every [`FLUSH_BYTES`] and at the end (one
/// system call for a burst, the write buffer within `max_write_buffer`); each flushed chunk
/// must go out within `timeout`, so a long replay to a client that reads is not cut.
async fn write(
    socket: &mut WebSocket,
    messages: impl IntoIterator<Item = Bytes>,
    timeout: Duration,
) -> Outcome {
    let mut messages = messages.into_iter().peekable();
    while messages.peek().is_some() {
        let chunk = async {
            let mut unflushed = 0;
            while unflushed < FLUSH_BYTES {
                let Some(message) = messages.next() else {
                    break;
                };
                if let Ok(text) = Utf8Bytes::try_from(message) {
                    unflushed += text.len();
                    socket.feed(Frame::Text(text)).await?;
                }
            }
            socket.flush().await
        };
        if let outcome @ (Outcome::Close(..) | Outcome::Gone) = timed_write(timeout, chunk).await {
            return outcome;
        }
    }
    Outcome::Continue
}

/// A write that must finish within `timeout`; a failed or late write ends the connection.
async fn timed_write(
    timeout: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Outcome {
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Outcome::Continue,
        Ok(Err(_)) => Outcome::Gone,
        Err(_) => {
            tracing::debug!("websocket write timed out");
            metrics::counter!(realtime_core::metrics::WRITE_TIMEOUTS, "transport" => "ws")
                .increment(1);
            Outcome::Gone
        }
    }
}
