//! One connected WebSocket on actix-ws: the socket loop around the neutral
//! [`WsSession`](realtime_http::ws::WsSession) — writes with a timeout, pings (and pongs:
//! actix-ws leaves them to the application), keepalives, and read errors mapped to close
//! codes.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError, Session};
use bytes::Bytes;
use bytestring::ByteString;
use realtime_http::ws::{Outgoing, Step, Tick, Timers, WsSession, close_code, timed_write};

/// The connection's timers.
pub(crate) struct Timing {
    pub(crate) write_timeout: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) keepalive: Option<Duration>,
}

pub(crate) async fn run(
    mut socket: Session,
    mut messages: AggregatedMessageStream,
    mut session: WsSession,
    timing: Timing,
    tripped: Arc<AtomicBool>,
) {
    let write_timeout = timing.write_timeout;
    let mut timers = Timers::new(timing.heartbeat, timing.keepalive);
    let mut step = write(&mut socket, [session.greeting()], write_timeout).await;
    while step.goes_on() {
        step = tokio::select! {
            outgoing = session.next_outgoing() => match outgoing {
                Outgoing::Messages(batch) => write(&mut socket, batch, write_timeout).await,
                Outgoing::Close(code, reason) => Step::Close(code, reason),
            },
            incoming = messages.recv() => match incoming {
                None if tripped.load(Ordering::Acquire) => Step::TOO_BIG,
                None => Step::Gone,
                // The client closes: answer its close frame, as the protocol asks.
                Some(Ok(AggregatedMessage::Close(_))) => Step::Close(close_code::DISCONNECTED, "closed by the client"),
                Some(Ok(AggregatedMessage::Text(text))) => {
                    let replies = session.on_text(&text).await;
                    write(&mut socket, replies, write_timeout).await
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    write(&mut socket, [session.binary_refused()], write_timeout).await
                }
                Some(Ok(AggregatedMessage::Ping(payload))) => {
                    timed_write(write_timeout, socket.pong(&payload)).await
                }
                Some(Ok(AggregatedMessage::Pong(_))) => Step::Continue,
                Some(Err(error)) => read_failure(&error, tripped.load(Ordering::Acquire)),
            },
            tick = timers.tick() => match tick {
                Tick::Ping => timed_write(write_timeout, socket.ping(b"")).await,
                Tick::Keepalive => write(&mut socket, [session.keepalive()], write_timeout).await,
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
        let reason = CloseReason {
            code: code.into(),
            description: Some(reason.to_owned()),
        };
        let _ = tokio::time::timeout(write_timeout, socket.close(Some(reason))).await;
    }
}

/// Maps a read error to the close code the client should see; `too_big` when the frame
/// guard refused what the client sent.
fn read_failure(error: &ProtocolError, too_big: bool) -> Step {
    match error {
        _ if too_big => Step::TOO_BIG,
        ProtocolError::Overflow => Step::TOO_BIG,
        // A message in fragments over the limit (actix-ws says so only in its message).
        ProtocolError::Io(io) if io.to_string().contains("continuation size") => Step::TOO_BIG,
        ProtocolError::Io(io) if io.kind() == io::ErrorKind::InvalidData => Step::NOT_UTF8,
        // A hang-up (the payload ended early) and anything else: nobody to tell.
        other => {
            tracing::debug!(error = %other, "websocket read failed");
            Step::Gone
        }
    }
}

/// Writes `messages` as text frames, each within `timeout` (actix-ws queues a few frames for
/// the connection and then waits for the client to read).
async fn write(
    socket: &mut Session,
    messages: impl IntoIterator<Item = Bytes>,
    timeout: Duration,
) -> Step {
    for message in messages {
        // The protocol's messages are JSON, so UTF-8 (checked, not copied).
        let Ok(text) = ByteString::try_from(message) else {
            continue;
        };
        let step = timed_write(timeout, socket.text(text)).await;
        if !step.goes_on() {
            return step;
        }
    }
    Step::Continue
}
