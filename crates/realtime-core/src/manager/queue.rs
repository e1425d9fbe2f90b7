//! A client's bounded queue, which the hubs deliver into, and what it holds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;

use crate::gap::{Gap, GapReason};
use crate::position::Position;
use crate::routing::Route;
use crate::shared::SharedEvent;

/// What a client receives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Message {
    /// An event, shared with every other client that receives it.
    Event(SharedEvent),
    /// The channel's sequence is not exact from here: refetch state as of `head`.
    Gap(Gap),
}

/// Why a client's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Manager::disconnect`](crate::Manager::disconnect) was called for it.
    Disconnected,
    /// Its queue filled up (see [`ManagerConfig::client_buffer`](crate::ManagerConfig)).
    /// Resuming from its last position replays what it missed.
    SlowConsumer,
    /// The manager is shutting down; reconnect (possibly to another instance).
    Shutdown,
}

impl CloseReason {
    /// A short name: `disconnected`, `slow_consumer`, `shutdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Disconnected => "disconnected",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// The part of a client the hubs deliver into.
pub(crate) struct ClientShared {
    pub(crate) id: Arc<str>,
    pub(crate) route: Route,
    capacity: usize,
    drop_on_full: bool,
    max_lag: Duration,
    queue: Mutex<Queue>,
    /// When it connected, by this instance's clock: a disconnect request caught up on late
    /// closes only clients that were connected when it was made.
    pub(crate) connected_at: std::time::SystemTime,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Message>,
    waker: Option<Waker>,
    closed: Option<CloseReason>,
    /// Channels with events dropped since the last queued item, and the newest dropped
    /// position: a `dropped` gap goes out before the next item.
    dropped: Vec<(Arc<str>, Position)>,
}

/// What happened to a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    Queued,
    Dropped,
    /// The queue was full and the client has now been closed as a slow consumer.
    ClosedSlow,
    AlreadyClosed,
}

impl ClientShared {
    pub(crate) fn new(
        id: Arc<str>,
        route: Route,
        capacity: usize,
        drop_on_full: bool,
        max_lag: Duration,
    ) -> Self {
        ClientShared {
            id,
            route,
            capacity,
            drop_on_full,
            max_lag,
            queue: Mutex::new(Queue::default()),
            connected_at: std::time::SystemTime::now(),
        }
    }

    /// Whether a paced repair should wait for this client: it is open, its queue is full, and
    /// a full queue would close it (a client that skips events when full is never waited for).
    pub(crate) fn holds_back(&self) -> bool {
        if self.drop_on_full {
            return false;
        }
        let queue = self.queue.lock();
        queue.closed.is_none() && queue.items.len() >= self.capacity
    }

    pub(crate) fn push(&self, message: Message) -> Pushed {
        let mut queue = self.queue.lock();
        if queue.closed.is_some() {
            return Pushed::AlreadyClosed;
        }
        // Behind by more than `max_lag`: as good as full, whatever the queue's length.
        let lagging = match (&message, queue.items.front()) {
            (Message::Event(new), Some(Message::Event(oldest))) => {
                new.taken().saturating_duration_since(oldest.taken()) > self.max_lag
            }
            _ => false,
        };
        if lagging || queue.items.len() >= self.capacity {
            if !self.drop_on_full {
                queue.closed = Some(CloseReason::SlowConsumer);
                let waker = queue.waker.take();
                drop(queue);
                wake(waker);
                return Pushed::ClosedSlow;
            }
            if let Message::Event(event) = &message {
                let channel: &str = &event.channel;
                match queue.dropped.iter_mut().find(|(c, _)| &**c == channel) {
                    Some(entry) => entry.1 = event.id,
                    None => queue.dropped.push((Arc::from(channel), event.id)),
                }
            }
            return Pushed::Dropped;
        }
        let markers = std::mem::take(&mut queue.dropped);
        for (channel, head) in markers {
            queue.items.push_back(Message::Gap(Gap {
                channel,
                reason: GapReason::Dropped,
                head,
            }));
        }
        queue.items.push_back(message);
        let waker = queue.waker.take();
        drop(queue);
        wake(waker);
        Pushed::Queued
    }

    pub(crate) fn close(&self, reason: CloseReason) {
        let mut queue = self.queue.lock();
        if queue.closed.is_none() {
            queue.closed = Some(reason);
        }
        let waker = queue.waker.take();
        drop(queue);
        wake(waker);
    }

    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.queue.lock().closed
    }

    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let mut queue = self.queue.lock();
        if let Some(message) = queue.items.pop_front() {
            return Poll::Ready(Some(message));
        }
        if queue.closed.is_some() {
            return Poll::Ready(None);
        }
        match &mut queue.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}
