//! One connected WebSocket on actix-ws: the socket loop around the neutral
//! [`WsSession`](realtime_http::ws::WsSession) — writes with a timeout, pings (and pongs:
//! actix-ws leaves them to the application), keepalives, and read errors mapped to close
//! codes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseReason, ProtocolError, Session};
use bytes::Bytes;
use bytestring::ByteString;
use realtime_http::watch::Watch;
use realtime_http::ws::{
    Encoded, Outgoing, Step, Tick, Timers, WsSession, close_code, timed_write,
};

/// The connection's timers and write budget.
pub(crate) struct Timing {
    pub(crate) write_timeout: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) max_write_buffer: usize,
}

/// actix-ws's response body as a stream of chunks, for [`watched`](realtime_http::watch::watched).
pub(crate) struct BodyChunks(pub(crate) BoxBody);

impl futures_core::Stream for BodyChunks {
    type Item = Result<Bytes, Box<dyn std::error::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        MessageBody::poll_next(Pin::new(&mut self.0), cx)
    }
}

/// The socket: actix-ws's session, the watch on the body the server writes from, and the
/// bytes handed to the session so far (frames as the server encodes them).
pub(crate) struct Socket {
    pub(crate) session: Session,
    pub(crate) watch: Watch<BodyChunks>,
    pub(crate) queued: u64,
    pub(crate) timing: Timing,
}

/// A server frame's length on the wire: the payload and an unmasked header.
fn frame_len(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (payload + header) as u64
}

impl Socket {
    /// Counts a frame of `payload_len` bytes about to be handed to the session; `false`
    /// (and the body cut) when what the server has not taken yet would go over the write
    /// budget — the connection then ends, as tungstenite's full write buffer ends it on axum.
    fn admit(&mut self, payload_len: usize) -> bool {
        self.queued += frame_len(payload_len);
        let taken = self.watch.taken().unwrap_or(self.queued);
        if self.queued.saturating_sub(taken) <= self.timing.max_write_buffer as u64 {
            return true;
        }
        tracing::debug!("websocket write buffer full");
        self.watch.cut();
        false
    }

    /// Whether the server has held what it took for the write timeout (counted, and the
    /// body cut, if so).
    fn stalled(&mut self) -> bool {
        if !self.watch.stalled(self.timing.write_timeout) {
            return false;
        }
        tracing::debug!("websocket write timed out");
        metrics::counter!(realtime_core::metrics::WRITE_TIMEOUTS, "transport" => "ws").increment(1);
        self.watch.cut();
        true
    }
}

pub(crate) async fn run(
    mut socket: Socket,
    mut messages: AggregatedMessageStream,
    mut session: WsSession,
    tripped: Arc<AtomicBool>,
) {
    let write_timeout = socket.timing.write_timeout;
    let mut timers = Timers::new(socket.timing.heartbeat, socket.timing.keepalive);
    // The server stops polling the body when the client stops reading; this notices.
    let mut stall_checks = tokio::time::interval(write_timeout / 2);
    stall_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut step = write(&mut socket, [Encoded::Text(session.greeting())]).await;
    while step.goes_on() {
        step = tokio::select! {
            outgoing = session.next_outgoing() => match outgoing {
                Outgoing::Messages(batch) => write(&mut socket, batch).await,
                Outgoing::Close(code, reason) => Step::Close(code, reason),
            },
            incoming = messages.recv() => match incoming {
                None if tripped.load(Ordering::Acquire) => Step::TOO_BIG,
                None => Step::Gone,
                // The client closes: answer its close frame, as the protocol asks.
                Some(Ok(AggregatedMessage::Close(_))) => Step::Close(close_code::DISCONNECTED, "closed by the client"),
                Some(Ok(AggregatedMessage::Text(text))) => {
                    let replies = session.on_text(&text).await;
                    write(&mut socket, replies).await
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    write(&mut socket, [Encoded::Text(session.binary_refused())]).await
                }
                Some(Ok(AggregatedMessage::Ping(payload))) => {
                    if socket.admit(payload.len()) {
                        timed_write(write_timeout, socket.session.pong(&payload)).await
                    } else {
                        Step::Gone
                    }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => Step::Continue,
                Some(Err(error)) => read_failure(&error, tripped.load(Ordering::Acquire)),
            },
            tick = timers.tick() => match tick {
                Tick::Ping => {
                    if socket.admit(0) {
                        timed_write(write_timeout, socket.session.ping(b"")).await
                    } else {
                        Step::Gone
                    }
                }
                Tick::Keepalive => write(&mut socket, [Encoded::Text(session.keepalive())]).await,
            },
            _ = stall_checks.tick() => if socket.stalled() { Step::Gone } else { Step::Continue },
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
        let _ = tokio::time::timeout(write_timeout, socket.session.close(Some(reason))).await;
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
        ProtocolError::UnmaskedFrame
        | ProtocolError::MaskedFrame
        | ProtocolError::InvalidOpcode(_)
        | ProtocolError::InvalidLength(_)
        | ProtocolError::BadOpCode
        | ProtocolError::ContinuationNotStarted
        | ProtocolError::ContinuationStarted
        | ProtocolError::ContinuationFragment(_) => {
            tracing::debug!(error = %error, "websocket protocol error");
            Step::PROTOCOL
        }
        // A hang-up (the payload ended early) and anything else: nobody to tell.
        other => {
            tracing::debug!(error = %other, "websocket read failed");
            Step::Gone
        }
    }
}

/// Writes `messages` as text or binary frames, each within the write timeout and the write
/// budget (actix-ws queues a few frames for the connection and then waits for the client to
/// read).
async fn write(socket: &mut Socket, messages: impl IntoIterator<Item = Encoded>) -> Step {
    for message in messages {
        let len = message.bytes().len();
        // Ok: a text frame, Err: a binary one.
        let frame = match message {
            // The protocol's text messages are JSON, so UTF-8 (checked, not copied).
            Encoded::Text(text) => match ByteString::try_from(text) {
                Ok(text) => Ok(text),
                Err(_) => continue,
            },
            Encoded::Binary(bytes) => Err(bytes),
            _ => continue,
        };
        if !socket.admit(len) {
            return Step::Gone;
        }
        let timeout = socket.timing.write_timeout;
        let step = match frame {
            Ok(text) => timed_write(timeout, socket.session.text(text)).await,
            Err(bytes) => timed_write(timeout, socket.session.binary(bytes)).await,
        };
        if !step.goes_on() {
            return step;
        }
    }
    Step::Continue
}
