//! One connected WebSocket on axum: the socket loop around the neutral
//! [`WsSession`](realtime_http::ws::WsSession) — writes with a timeout, pings, keepalives,
//! and tungstenite's read errors mapped to close codes.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as Frame, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt;
use realtime_http::ws::{Encoded, Outgoing, Step, Tick, Timers, WsSession, timed_write};

/// Bytes written before a flush within one batch.
const FLUSH_BYTES: usize = 64 * 1024;

pub(crate) async fn run(
    mut socket: WebSocket,
    mut session: WsSession,
    write_timeout: Duration,
    heartbeat: Duration,
    keepalive_interval: Option<Duration>,
) {
    let mut timers = Timers::new(heartbeat, keepalive_interval);
    let greeting = [Encoded::Text(session.greeting())];
    let mut step = Box::pin(write(&mut socket, greeting, write_timeout)).await;
    // Every write and reply below is boxed: a task weighs as much as its largest state for
    // its whole life, and an idle connection waits in the small one (this select), so the
    // few hundred bytes of a write in flight are allocated only while one is.
    while step.goes_on() {
        step = tokio::select! {
            outgoing = session.next_outgoing() => match outgoing {
                Outgoing::Messages(messages) => {
                    Box::pin(write(&mut socket, messages, write_timeout)).await
                }
                Outgoing::Close(code, reason) => Step::Close(code, reason),
            },
            incoming = socket.recv() => match incoming {
                None => Step::Gone,
                // The client closes: tungstenite has queued the reply the protocol asks for;
                // a flush sends it.
                Some(Ok(Frame::Close(_))) => {
                    let _ = Box::pin(tokio::time::timeout(write_timeout, socket.flush())).await;
                    Step::Gone
                }
                Some(Ok(Frame::Text(text))) => {
                    let replies = Box::pin(session.on_text(text.as_str())).await;
                    Box::pin(write(&mut socket, replies, write_timeout)).await
                }
                Some(Ok(Frame::Binary(_))) => {
                    let refusal = [Encoded::Text(session.binary_refused())];
                    Box::pin(write(&mut socket, refusal, write_timeout)).await
                }
                // tungstenite queued the pong (one at a time: a newer ping replaces it) and
                // sends it on a flush; a client that pings and never reads then stalls the
                // flush, which the write timeout cuts.
                Some(Ok(Frame::Ping(_))) => {
                    Box::pin(timed_write(write_timeout, socket.flush())).await
                }
                Some(Ok(_)) => Step::Continue,
                Some(Err(error)) => read_failure(error),
            },
            tick = timers.tick() => match tick {
                Tick::Ping => {
                    let ping = socket.send(Frame::Ping(Bytes::new()));
                    Box::pin(timed_write(write_timeout, ping)).await
                }
                Tick::Keepalive => {
                    let keepalive = [Encoded::Text(session.keepalive())];
                    Box::pin(write(&mut socket, keepalive, write_timeout)).await
                }
            },
        };
    }
    if let Step::Close(code, reason) = step {
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
        let _ = Box::pin(tokio::time::timeout(write_timeout, socket.send(close))).await;
    }
}

/// Maps a read error to the close code the client should see.
fn read_failure(error: axum::Error) -> Step {
    let inner = error.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Step::TOO_BIG,
        Some(tungstenite::Error::Utf8(_)) => Step::NOT_UTF8,
        _ => {
            tracing::debug!(error = %inner, "websocket read failed");
            Step::Gone
        }
    }
}

/// Writes `messages` as text or binary frames, flushing every [`FLUSH_BYTES`] and at the end (one
/// system call for a burst, the write buffer within `max_write_buffer`); each flushed chunk
/// must go out within `timeout`, so a long replay to a client that reads is not cut.
async fn write(
    socket: &mut WebSocket,
    messages: impl IntoIterator<Item = Encoded>,
    timeout: Duration,
) -> Step {
    let mut messages = messages.into_iter().peekable();
    while messages.peek().is_some() {
        let chunk = async {
            let mut unflushed = 0;
            while unflushed < FLUSH_BYTES {
                let Some(message) = messages.next() else {
                    break;
                };
                unflushed += message.bytes().len();
                let frame = match message {
                    Encoded::Text(text) => match Utf8Bytes::try_from(text) {
                        Ok(text) => Frame::Text(text),
                        Err(_) => continue,
                    },
                    Encoded::Binary(bytes) => Frame::Binary(bytes),
                    _ => continue,
                };
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        let step = timed_write(timeout, chunk).await;
        if !step.goes_on() {
            return step;
        }
    }
    Step::Continue
}
