//! The response body: prelude (retry, replay), `: connected`, then live events and heartbeats.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use realtime_core::{Client, Message, SharedEvent, sse};
use tokio::time::{Instant, Interval, MissedTickBehavior};

/// Largest chunk built from messages that are already queued; one write instead of many.
const MAX_BATCH_BYTES: usize = 32 * 1024;

/// What goes out before live events: fixed chunks, and replayed events encoded only when
/// their turn comes.
pub(crate) enum Prelude {
    Bytes(Bytes),
    Event(SharedEvent),
}

pub(crate) struct SseBody {
    prelude: VecDeque<Prelude>,
    client: Option<Client>,
    heartbeat: Interval,
    /// When data last went out. Re-arming the timer on every event costs more than reading
    /// the clock, so a tick that comes too soon after traffic re-arms it from here instead.
    last_sent: Instant,
}

impl SseBody {
    pub(crate) fn new(prelude: VecDeque<Prelude>, client: Client, heartbeat: Duration) -> Self {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        SseBody {
            prelude,
            client: Some(client),
            heartbeat,
            last_sent: Instant::now(),
        }
    }
}

fn frame(message: &Message) -> Bytes {
    match message {
        Message::Event(event) => event.sse_frame(),
        Message::Gap(gap) => sse::encode_gap(gap),
        // A message kind this adapter does not know: nothing to send.
        _ => Bytes::new(),
    }
}

impl futures_core::Stream for SseBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(item) = this.prelude.pop_front() {
            return Poll::Ready(Some(Ok(match item {
                Prelude::Bytes(chunk) => chunk,
                // Encoded now and dropped once written: one frame in memory at a time.
                Prelude::Event(event) => sse::encode_event(&event),
            })));
        }
        let Some(client) = this.client.as_mut() else {
            return Poll::Ready(None);
        };
        match client.poll_recv(cx) {
            Poll::Ready(Some(first)) => {
                this.last_sent = Instant::now();
                let first = frame(&first);
                // Coalesce whatever else is already queued; a lone frame is sent as-is,
                // shared with every other client.
                let mut batch: Option<BytesMut> = None;
                while batch.as_ref().map_or(first.len(), BytesMut::len) < MAX_BATCH_BYTES {
                    let Poll::Ready(Some(next)) = client.poll_recv(cx) else {
                        break;
                    };
                    let buf = batch.get_or_insert_with(|| BytesMut::from(&first[..]));
                    buf.extend_from_slice(&frame(&next));
                }
                Poll::Ready(Some(Ok(batch.map_or(first, BytesMut::freeze))))
            }
            Poll::Ready(None) => {
                let reason = client.close_reason().map_or("closed", |r| r.as_str());
                tracing::debug!(client = client.id(), reason, "sse stream ends");
                // Dropping the client releases it in the manager right away.
                this.client = None;
                Poll::Ready(Some(Ok(sse::encode_comment(&format!("closed: {reason}")))))
            }
            Poll::Pending => loop {
                if this.heartbeat.poll_tick(cx).is_pending() {
                    return Poll::Pending;
                }
                let due = this.last_sent + this.heartbeat.period();
                if due <= Instant::now() {
                    this.last_sent = Instant::now();
                    return Poll::Ready(Some(Ok(Bytes::from_static(b":\n\n"))));
                }
                // Traffic since the last tick: the next heartbeat is one period after it.
                this.heartbeat.reset_at(due);
            },
        }
    }
}
