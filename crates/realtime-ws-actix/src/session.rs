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
use realtime_http::ws::{Outgoing, WsSession, close_code};
use tokio::time::{Instant, MissedTickBehavior, interval_at};

enum Outcome {
    Continue,
    Close(u16, &'static str),
    Gone,
}

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
    let Timing {
        write_timeout,
        heartbeat,
        keepalive: keepalive_interval,
    } = timing;
    let mut ping = interval_at(Instant::now() + heartbeat, heartbeat);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let keepalive_every = keepalive_interval.unwrap_or(Duration::from_secs(3_600));
    let mut keepalive = interval_at(Instant::now() + keepalive_every, keepalive_every);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut outcome = write(&mut socket, [session.greeting()], write_timeout).await;
    while matches!(outcome, Outcome::Continue) {
        outcome = tokio::select! {
            outgoing = session.next_outgoing() => match outgoing {
                Outgoing::Messages(batch) => write(&mut socket, batch, write_timeout).await,
                Outgoing::Close(code, reason) => Outcome::Close(code, reason),
            },
            incoming = messages.recv() => match incoming {
                None if tripped.load(Ordering::Acquire) => Outcome::Close(close_code::TOO_BIG, "message too big"),
                None => Outcome::Gone,
                // The client closes: answer its close frame, as the protocol asks.
                Some(Ok(AggregatedMessage::Close(_))) => Outcome::Close(close_code::DISCONNECTED, "closed by the client"),
                Some(Ok(AggregatedMessage::Text(text))) => {
                    let replies = session.on_text(&text).await;
                    write(&mut socket, replies, write_timeout).await
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    write(&mut socket, [session.binary_refused()], write_timeout).await
                }
                Some(Ok(AggregatedMessage::Ping(payload))) => {
                    timed(write_timeout, socket.pong(&payload)).await
                }
                Some(Ok(AggregatedMessage::Pong(_))) => Outcome::Continue,
                Some(Err(error)) => read_failure(&error, tripped.load(Ordering::Acquire)),
            },
            _ = ping.tick() => timed(write_timeout, socket.ping(b"")).await,
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
        let reason = CloseReason {
            code: code.into(),
            description: Some(reason.to_owned()),
        };
        let _ = tokio::time::timeout(write_timeout, socket.close(Some(reason))).await;
    }
}

/// Maps a read error to the close code the client should see; `too_big` when the frame
/// guard refused what the client sent.
fn read_failure(error: &ProtocolError, too_big: bool) -> Outcome {
    match error {
        _ if too_big => Outcome::Close(close_code::TOO_BIG, "message too big"),
        ProtocolError::Overflow => Outcome::Close(close_code::TOO_BIG, "message too big"),
        // A message in fragments over the limit (actix-ws says so only in its message).
        ProtocolError::Io(io) if io.to_string().contains("continuation size") => {
            Outcome::Close(close_code::TOO_BIG, "message too big")
        }
        ProtocolError::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
            Outcome::Close(close_code::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        // A hang-up (the payload ended early) and anything else: nobody to tell.
        other => {
            tracing::debug!(error = %other, "websocket read failed");
            Outcome::Gone
        }
    }
}

/// Writes `messages` as text frames, each within `timeout` (actix-ws queues a few frames for
/// the connection and then waits for the client to read).
async fn write(
    socket: &mut Session,
    messages: impl IntoIterator<Item = Bytes>,
    timeout: Duration,
) -> Outcome {
    for message in messages {
        // The protocol's messages are JSON, so UTF-8 (checked, not copied).
        let Ok(text) = ByteString::try_from(message) else {
            continue;
        };
        if let outcome @ (Outcome::Close(..) | Outcome::Gone) =
            timed(timeout, socket.text(text)).await
        {
            return outcome;
        }
    }
    Outcome::Continue
}

/// A write that must finish within `timeout`; a failed or late write ends the connection.
async fn timed<E>(timeout: Duration, write: impl Future<Output = Result<(), E>>) -> Outcome {
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
