//! The cross-instance bus contract, and the subscription queue every backend hands out.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::Result;
use crate::event::Event;
use crate::frame::Origin;
use crate::history::Reach;

/// What a bus subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusMessage {
    /// An event published to the channel, with its position, and the instance that
    /// published it.
    Event(Event, Origin),
    /// Messages may have been lost (the connection dropped and came back, or this
    /// subscriber fell behind). The receiver should catch up from the store.
    Interrupted,
}

/// Carries events between the instances of a deployment.
///
/// Implementations must be usable as `Arc<dyn Bus>`. Each `Bus` value is one instance's
/// connection; two values built against the same broker stand for two servers. Implement it
/// with `#[async_trait::async_trait]`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends a stored event to every instance subscribed to its channel, as published by
    /// `origin`.
    ///
    /// # Behavior
    /// - Every subscription to `event.channel` that was active before this call started,
    ///   on any instance including this one, receives the event once — or, if the broker or
    ///   the connection loses it, the subscriber can tell: a later event's offset jumps, or
    ///   it receives [`BusMessage::Interrupted`].
    /// - Events published by one caller in sequence arrive in that order per channel.
    /// - The event's position, routing fields, payload and its format, and `origin`, arrive unchanged
    ///   (a bus between processes carries them as a [`frame`](crate::frame)).
    /// - After [`Bus::close`], returns [`Error::Closed`](crate::Error::Closed).
    async fn publish(&self, event: &Event, origin: Origin) -> Result<()>;

    /// Subscribes this instance to `channel`.
    ///
    /// # Behavior
    /// - When this returns, the subscription is active: events published afterwards are
    ///   delivered to it.
    /// - Dropping the [`BusSubscription`] unsubscribes; no further events are queued for it.
    /// - When the connection drops, the implementation reconnects and resubscribes by itself
    ///   and then yields [`BusMessage::Interrupted`].
    /// - After [`Bus::close`] the subscription ends: [`BusSubscription::recv`] returns `None`
    ///   once queued messages are drained.
    async fn subscribe(&self, channel: &str) -> Result<BusSubscription>;

    /// Where this bus publishes `channel`'s events, for a store on the same server that can
    /// publish them in the same operation as its append (one round trip instead of two; see
    /// [`Store::publishes_to`](crate::Store::publishes_to)).
    ///
    /// # Behavior
    /// - `None` (the default) when no store may publish for this bus.
    /// - Otherwise the backend's name, its server and the backend's own name for the channel;
    ///   a store that recognises them publishes exactly as [`Bus::publish`] would.
    /// - `None` after [`Bus::close`].
    fn publish_target(&self, channel: &str) -> Option<PublishTarget> {
        let _ = channel;
        None
    }

    /// Which processes this bus reaches: what
    /// [`ManagerBuilder::build`](crate::ManagerBuilder::build) checks the
    /// [`History`](crate::History) mode against.
    ///
    /// # Behavior
    /// [`Reach::Network`] when instances in other processes receive what this bus publishes;
    /// [`Reach::Process`] for a bus inside this process. A wrapper answers as the bus it
    /// wraps.
    fn reach(&self) -> Reach;

    /// Whether the bus can carry events right now, for readiness checks
    /// ([`Manager::ready`](crate::Manager::ready)).
    ///
    /// # Behavior
    /// - `Ok` when publishing and receiving work now; otherwise why not (retryable while a
    ///   connection is down and being retried), [`Error::Closed`](crate::Error::Closed)
    ///   after [`Bus::close`].
    /// - Answers within the bus's own operation timeout; changes nothing.
    /// - The default answers `Ok`, for a bus in this process.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Closes the connection and ends every subscription.
    ///
    /// # Behavior
    /// Idempotent. Later calls to `publish` and `subscribe` return
    /// [`Error::Closed`](crate::Error::Closed).
    async fn close(&self) -> Result<()>;
}

/// Where a bus publishes a channel's events: what a store of the same backend needs to
/// publish them itself (see [`Bus::publish_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishTarget {
    /// The backend (`"redis"`).
    pub backend: &'static str,
    /// The server, as the backend names it (for Redis, its URL without credentials).
    pub server: String,
    /// The backend's name for the channel (for Redis, the pub/sub channel).
    pub channel: String,
}

impl PublishTarget {
    /// A target of `backend` on `server`, publishing to `channel`.
    pub fn new(
        backend: &'static str,
        server: impl Into<String>,
        channel: impl Into<String>,
    ) -> Self {
        PublishTarget {
            backend,
            server: server.into(),
            channel: channel.into(),
        }
    }
}

/// The receiving end of a bus subscription. Unsubscribes when dropped.
pub struct BusSubscription {
    rx: mpsc::Receiver<BusMessage>,
    lagged: Arc<AtomicBool>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

/// The sending end that a [`Bus`] implementation feeds a subscription through.
///
/// It never blocks the backend's reader: when the subscriber is full, the event is dropped
/// and the subscriber later receives [`BusMessage::Interrupted`], so it can repair from the
/// store. Memory stays bounded by the capacity.
#[derive(Clone)]
pub struct BusSender {
    tx: mpsc::Sender<BusMessage>,
    lagged: Arc<AtomicBool>,
}

/// Whether [`BusSender::send`] queued the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued.
    Queued,
    /// The subscriber was full; it will be told it was interrupted.
    Lagged,
    /// The subscription was dropped: stop sending to it.
    Closed,
}

impl BusSubscription {
    /// A subscription queue holding at most `capacity` messages, and its sender. `on_drop`
    /// runs once when the subscription is dropped (use it to unsubscribe at the broker).
    pub fn channel(
        capacity: usize,
        on_drop: impl FnOnce() + Send + Sync + 'static,
    ) -> (BusSender, BusSubscription) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        (
            BusSender {
                tx,
                lagged: lagged.clone(),
            },
            BusSubscription {
                rx,
                lagged,
                on_drop: Some(Box::new(on_drop)),
            },
        )
    }

    /// The next message if one is queued (or a loss to report), without waiting.
    pub fn try_recv(&mut self) -> Option<BusMessage> {
        match self.rx.try_recv() {
            Ok(message) => Some(message),
            Err(_) => self
                .lagged
                .swap(false, Ordering::AcqRel)
                .then_some(BusMessage::Interrupted),
        }
    }

    /// The next message; `None` once the bus ended the subscription and it is drained.
    pub async fn recv(&mut self) -> Option<BusMessage> {
        match self.rx.try_recv() {
            Ok(message) => return Some(message),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        // Drained: the loss (if any) happened after everything already received.
        if self.lagged.swap(false, Ordering::AcqRel) {
            return Some(BusMessage::Interrupted);
        }
        self.rx.recv().await
    }
}

impl Drop for BusSubscription {
    fn drop(&mut self) {
        if let Some(on_drop) = self.on_drop.take() {
            on_drop();
        }
    }
}

impl fmt::Debug for BusSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusSubscription").finish_non_exhaustive()
    }
}

impl BusSender {
    /// Queues `message` without waiting.
    pub fn send(&self, message: BusMessage) -> SendOutcome {
        match self.tx.try_send(message) {
            Ok(()) => SendOutcome::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::Release);
                SendOutcome::Lagged
            }
            Err(mpsc::error::TrySendError::Closed(_)) => SendOutcome::Closed,
        }
    }

    /// Tells the subscriber that messages may have been lost (e.g. after a reconnect).
    pub fn interrupted(&self) -> SendOutcome {
        self.send(BusMessage::Interrupted)
    }

    /// Whether the subscription has been dropped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl fmt::Debug for BusSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}
