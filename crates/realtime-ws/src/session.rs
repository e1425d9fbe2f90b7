//! One connected WebSocket on axum: the socket loop around the neutral
//! [`WsSession`](realtime_http::ws::WsSession) — writes with a timeout, pings, keepalives,
//! and tungstenite's read errors mapped to close codes.
//!
//! The loop is a hand-written future rather than an `async fn` with `select!`: a task weighs
//! as much as its future's largest state for its whole life, and an `async fn` keeps its
//! arguments and their moved copies, the `select!` branches and their outputs side by side
//! (1.9 KB). Here an idle connection is its fields: the socket and session behind one box,
//! the timer, and an operation slot. An operation in flight (a write, a reply to a client
//! message) owns that box while it runs — moving a pointer, not the socket — and is itself
//! boxed, allocated only while it runs.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use realtime_http::ws::{Encoded, Outgoing, Step, Tick, Timers, WsSession, timed_write};
use tokio::io::AsyncReadExt;
use tungstenite::Message as Frame;
use tungstenite::Utf8Bytes;
use tungstenite::protocol::CloseFrame;

use crate::upgrade::Socket;

/// Bytes written before a flush within one batch.
const FLUSH_BYTES: usize = 64 * 1024;

/// What an operation needs and hands back when it ends.
struct Conn {
    socket: Socket,
    session: WsSession,
    write_timeout: Duration,
}

/// A write or a reply in flight, owning the connection until it ends.
type Operation = Pin<Box<dyn Future<Output = (Box<Conn>, Step)> + Send>>;

/// One connection's loop: reads, the client's queue and the timers, one operation at a time.
pub(crate) struct Connection {
    /// `None` only while an operation owns it.
    conn: Option<Box<Conn>>,
    operation: Option<Operation>,
    timers: Timers,
    /// Set once the close (or the end) is under way: the next operation to end is the last.
    closing: bool,
    /// Which source is polled first, rotated so that none starves the others (as `select!`
    /// picks at random).
    first: u8,
}

/// What woke the loop.
enum Ready {
    Outgoing(Outgoing),
    Incoming(Option<Result<Frame, tungstenite::Error>>),
    Tick(Tick),
}

impl Connection {
    pub(crate) fn new(
        socket: Socket,
        session: WsSession,
        write_timeout: Duration,
        heartbeat: Duration,
        keepalive_interval: Option<Duration>,
    ) -> Connection {
        let conn = Box::new(Conn {
            socket,
            session,
            write_timeout,
        });
        let greeting = [Encoded::Text(conn.session.greeting())];
        Connection {
            conn: None,
            operation: Some(Box::pin(write_messages(conn, greeting))),
            timers: Timers::new(heartbeat, keepalive_interval),
            closing: false,
            first: 0,
        }
    }

    /// The first source with something ready, starting at a rotating one.
    fn poll_sources(
        conn: &mut Conn,
        timers: &mut Timers,
        first: u8,
        cx: &mut Context<'_>,
    ) -> Poll<Ready> {
        for i in 0..3 {
            let ready = match (first + i) % 3 {
                0 => conn.session.poll_outgoing(cx).map(Ready::Outgoing),
                1 => conn.socket.poll_next_unpin(cx).map(Ready::Incoming),
                _ => timers.poll_tick(cx).map(Ready::Tick),
            };
            if ready.is_ready() {
                return ready;
            }
        }
        Poll::Pending
    }

    /// The operation answering what woke the loop, or the step if none is needed.
    fn start(conn: Box<Conn>, ready: Ready) -> Result<Operation, (Box<Conn>, Step)> {
        Ok(match ready {
            Ready::Outgoing(Outgoing::Messages(messages)) => {
                Box::pin(write_messages(conn, messages))
            }
            Ready::Outgoing(Outgoing::Close(code, reason)) => {
                return Err((conn, Step::Close(code, reason)));
            }
            Ready::Incoming(None) => return Err((conn, Step::Gone)),
            // The client closes: tungstenite has queued the reply the protocol asks for; a
            // flush sends it.
            Ready::Incoming(Some(Ok(Frame::Close(_)))) => Box::pin(async move {
                let mut conn = conn;
                let timeout = conn.write_timeout;
                let _ = tokio::time::timeout(timeout, conn.socket.flush()).await;
                (conn, Step::Gone)
            }),
            Ready::Incoming(Some(Ok(Frame::Text(text)))) => Box::pin(reply(conn, text)),
            Ready::Incoming(Some(Ok(Frame::Binary(_)))) => {
                let refusal = [Encoded::Text(conn.session.binary_refused())];
                Box::pin(write_messages(conn, refusal))
            }
            // tungstenite queued the pong (one at a time: a newer ping replaces it) and sends
            // it on a flush; a client that pings and never reads then stalls the flush, which
            // the write timeout cuts.
            Ready::Incoming(Some(Ok(Frame::Ping(_)))) => Box::pin(async move {
                let mut conn = conn;
                let step = timed_write(conn.write_timeout, conn.socket.flush()).await;
                (conn, step)
            }),
            Ready::Incoming(Some(Ok(_))) => return Err((conn, Step::Continue)),
            Ready::Incoming(Some(Err(error))) => return Err((conn, read_failure(error))),
            Ready::Tick(Tick::Ping) => Box::pin(async move {
                let mut conn = conn;
                let ping = conn.socket.send(Frame::Ping(Bytes::new()));
                let step = timed_write(conn.write_timeout, ping).await;
                (conn, step)
            }),
            Ready::Tick(Tick::Keepalive) => {
                let keepalive = [Encoded::Text(conn.session.keepalive())];
                Box::pin(write_messages(conn, keepalive))
            }
        })
    }

    /// After an operation (or a source needing none): go on, close, or end.
    fn after(&mut self, conn: Box<Conn>, step: Step) -> Option<()> {
        match step {
            Step::Continue if !self.closing => {
                self.conn = Some(conn);
                Some(())
            }
            Step::Close(code, reason) if !self.closing => {
                self.closing = true;
                self.operation = Some(Box::pin(close(conn, code, reason)));
                Some(())
            }
            _ => None,
        }
    }
}

impl Future for Connection {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if let Some(operation) = &mut this.operation {
                let (conn, step) = ready!(operation.as_mut().poll(cx));
                this.operation = None;
                if this.after(conn, step).is_none() {
                    return Poll::Ready(());
                }
                continue;
            }
            let Some(conn) = this.conn.as_deref_mut() else {
                return Poll::Ready(());
            };
            let ready = ready!(Self::poll_sources(conn, &mut this.timers, this.first, cx));
            this.first = (this.first + 1) % 3;
            let Some(conn) = this.conn.take() else {
                return Poll::Ready(());
            };
            match Self::start(conn, ready) {
                Ok(operation) => this.operation = Some(operation),
                Err((conn, step)) => {
                    if this.after(conn, step).is_none() {
                        return Poll::Ready(());
                    }
                }
            }
        }
    }
}

/// Answers a text message: the session's replies, written.
async fn reply(mut conn: Box<Conn>, text: Utf8Bytes) -> (Box<Conn>, Step) {
    let replies = conn.session.on_text(text.as_str()).await;
    write_messages(conn, replies).await
}

async fn write_messages(
    mut conn: Box<Conn>,
    messages: impl IntoIterator<Item = Encoded>,
) -> (Box<Conn>, Step) {
    let step = write(&mut conn.socket, messages, conn.write_timeout).await;
    (conn, step)
}

/// After its close frame, how long and how much the server reads (and discards) of what the
/// client still sends: closing with unread data resets the connection, and the client's
/// stack then drops the close frame (a browser sees 1006, not the code).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 16 << 20;

async fn close(mut conn: Box<Conn>, code: u16, reason: &'static str) -> (Box<Conn>, Step) {
    tracing::debug!(
        client = conn.session.client_id(),
        code,
        reason,
        "closing websocket"
    );
    let close = Frame::Close(Some(CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from_static(reason),
    }));
    if let Ok(Ok(())) = tokio::time::timeout(conn.write_timeout, conn.socket.send(close)).await {
        linger(&mut conn.socket).await;
    }
    (conn, Step::Gone)
}

/// Reads and discards until the client closes its side, within [`LINGER_TIME`] and
/// [`LINGER_BYTES`]: raw bytes, past tungstenite (which after a too-big frame's header would
/// gather the frame it refused).
async fn linger(socket: &mut Socket) {
    let raw = socket.get_mut();
    let mut buffer = [0u8; 4096];
    let drain = async {
        let mut read = 0u64;
        while read < LINGER_BYTES {
            match raw.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n as u64,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Maps a read error to the close code the client should see.
fn read_failure(error: tungstenite::Error) -> Step {
    match error {
        tungstenite::Error::Capacity(_) => Step::TOO_BIG,
        tungstenite::Error::Utf8(_) => Step::NOT_UTF8,
        // Except a hang-up without a close frame, which nobody is left to be told about.
        tungstenite::Error::Protocol(error)
            if error != tungstenite::error::ProtocolError::ResetWithoutClosingHandshake =>
        {
            tracing::debug!(%error, "websocket protocol error");
            Step::PROTOCOL
        }
        error => {
            tracing::debug!(%error, "websocket read failed");
            Step::Gone
        }
    }
}

/// Writes `messages` as text or binary frames, flushing every [`FLUSH_BYTES`] and at the end (one
/// system call for a burst, the write buffer within `max_write_buffer`); each flushed chunk
/// must go out within `timeout`, so a long replay to a client that reads is not cut.
async fn write(
    socket: &mut Socket,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection's task holds this future for its whole life (104 bytes when
    /// written; the `async fn` loop it replaced was 1.9 KB): keep it small.
    #[test]
    fn an_idle_connection_future_stays_small() {
        assert!(std::mem::size_of::<Connection>() <= 160);
        // What an operation takes over is a pointer, not the socket.
        assert_eq!(std::mem::size_of::<Option<Box<Conn>>>(), 8);
    }
}
