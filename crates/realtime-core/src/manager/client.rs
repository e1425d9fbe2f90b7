use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::Mutex;

use super::Inner;
use super::hub::Hub;
use crate::event::SharedEvent;
use crate::gap::{Gap, GapReason};
use crate::position::Position;
use crate::routing::Route;

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

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
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

/// One channel of a client, with the newest position it has been given.
pub(crate) struct Membership {
    pub(crate) hub: Arc<Hub>,
    pub(crate) slot: usize,
    /// Live events at or before this position were already replayed: skipped.
    pub(crate) cursor: Option<Position>,
}

/// A connected subscriber: a stream of [`Message`]s for one or several channels.
///
/// Dropping it leaves every channel at once (the manager's connection count drops, and the
/// bus subscription is released when it was the channel's last local client).
pub struct Client {
    pub(crate) shared: Arc<ClientShared>,
    pub(crate) memberships: Vec<Membership>,
    pub(crate) manager: Arc<Inner>,
}

impl Client {
    /// The client's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The channels, in subscription order, by the names the client asked for (a
    /// tenant-scoped channel by its plain name).
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.memberships
            .iter()
            .map(|m| crate::routing::channel_name(&m.hub.name))
    }

    /// The client's tenant and subject.
    pub fn route(&self) -> &Route {
        &self.shared.route
    }

    /// Why the stream ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.close_reason()
    }

    /// The next message; `None` once the client was closed and its queue drained.
    pub async fn recv(&mut self) -> Option<Message> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next message if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        let waker = Waker::noop();
        match self.poll_recv(&mut Context::from_waker(waker)) {
            Poll::Ready(message) => message,
            Poll::Pending => None,
        }
    }

    /// Polls for the next message, skipping live events already given by the replay.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            let Some(message) = std::task::ready!(self.shared.poll_next(cx)) else {
                return Poll::Ready(None);
            };
            let (channel, position) = match &message {
                Message::Event(event) => (event.channel.as_str(), event.id),
                Message::Gap(gap) => (&*gap.channel, gap.head),
            };
            let Some(member) = self
                .memberships
                .iter_mut()
                .find(|m| &*m.hub.name == channel)
            else {
                continue;
            };
            if let (Message::Event(_), Some(cursor)) = (&message, member.cursor)
                && cursor.epoch == position.epoch
                && position.offset <= cursor.offset
            {
                continue;
            }
            member.cursor = Some(position);
            return Poll::Ready(Some(message));
        }
    }
}

impl futures_core::Stream for Client {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.manager.release_client(&self.shared, &self.memberships);
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.shared.id)
            .field("channels", &self.channels().collect::<Vec<_>>())
            .field("route", &self.shared.route)
            .finish()
    }
}
