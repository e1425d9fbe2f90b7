//! The thin driver a bus backend implements, and the [`Bus`] built on it.
//!
//! A backend moves frames: it publishes bytes to a broker channel, subscribes and
//! unsubscribes its connection, and reports what arrives (and when its connection dropped or
//! came back) to an [`Inbox`]. Everything else a [`Bus`] owes the manager lives once, here,
//! in [`DriverBus`]: the per-instance subscriber table, one broker subscription per channel
//! however many local subscriptions share it (subscribed with the first, unsubscribed after
//! the last through a queue, since a drop cannot wait), the event [`frame`]
//! format, [`BusMessage::Interrupted`](crate::BusMessage::Interrupted) after a reconnect, and
//! unreadable frames counted and turned into `Interrupted`.

mod inbox;
mod settings;
mod url;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use tokio::sync::mpsc;

pub use inbox::{Inbox, InboxGuard};
pub use settings::certificate_with_key;
pub use url::redact_url;

use crate::bus::{Bus, BusSubscription, PublishTarget};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::frame::{self, Origin};
use crate::history::Reach;

/// What a bus backend implements: frames on named channels of its broker.
///
/// The channel names given are the manager's (a backend maps them to its broker's names,
/// e.g. with a prefix). Build the [`Inbox`] first, hand it to the driver's connection, then
/// wrap both in a [`DriverBus`].
#[async_trait]
pub trait BusDriver: Send + Sync + 'static {
    /// Sends `frame` to every instance whose connection is subscribed to `channel`.
    ///
    /// # Behavior
    /// - Returns `Ok` once the broker took the frame (what that promises is the backend's to
    ///   document); within the backend's operation timeout, else a retryable error.
    /// - Frames published by one caller in sequence arrive in that order per channel.
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()>;

    /// Subscribes this connection to `channel`.
    ///
    /// # Behavior
    /// - When it returns `Ok`, frames published to `channel` afterwards reach the inbox
    ///   ([`Inbox::frame`]).
    /// - Called once per channel while it has local subscriptions, never concurrently with
    ///   [`BusDriver::unsubscribe`] (both hold the inbox's lock).
    /// - When the connection drops, the driver reconnects by itself, reports
    ///   [`Inbox::connection_lost`], subscribes [`Inbox::to_resubscribe`] again and reports
    ///   each with [`Inbox::resubscribed`].
    async fn subscribe(&self, channel: &str) -> Result<()>;

    /// Ends this connection's subscription to `channel` (its last local subscription ended).
    ///
    /// # Behavior
    /// Best effort: a failure is logged by the caller; frames that still arrive are dropped.
    async fn unsubscribe(&self, channel: &str) -> Result<()>;

    /// See [`Bus::reach`].
    fn reach(&self) -> Reach;

    /// See [`Bus::publish_target`]. The default is `None`.
    fn publish_target(&self, channel: &str) -> Option<PublishTarget> {
        let _ = channel;
        None
    }

    /// See [`Bus::check`]. The default answers `Ok`.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Closes the connection; `channels` are the ones still subscribed (their local
    /// subscriptions have already ended), to unsubscribe if the backend needs to.
    ///
    /// # Behavior
    /// Called once, by [`DriverBus`]'s close, without the inbox's lock held; afterwards the
    /// driver is not used again.
    async fn close(&self, channels: Vec<String>) -> Result<()>;
}

/// A backend's bus type that wraps a [`DriverBus`] for its own constructors and accessors (as
/// `InMemoryBus` and `RedisBus` do): implementing this gives it [`Bus`], every method
/// forwarded.
pub trait OnDriver: Send + Sync + 'static {
    /// The bus every [`Bus`] method is forwarded to.
    fn driver_bus(&self) -> &dyn Bus;
}

#[async_trait]
impl<T: OnDriver> Bus for T {
    async fn publish(&self, event: &Event, origin: Origin) -> Result<()> {
        self.driver_bus().publish(event, origin).await
    }

    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.driver_bus().subscribe(channel).await
    }

    fn reach(&self) -> Reach {
        self.driver_bus().reach()
    }

    fn publish_target(&self, channel: &str) -> Option<PublishTarget> {
        self.driver_bus().publish_target(channel)
    }

    async fn check(&self) -> Result<()> {
        self.driver_bus().check().await
    }

    async fn close(&self) -> Result<()> {
        self.driver_bus().close().await
    }
}

/// A [`Bus`] on a [`BusDriver`].
pub struct DriverBus<D> {
    driver: Arc<D>,
    inbox: Inbox,
    /// Channels whose last local subscription ended; started with the first subscription
    /// (a drop cannot await the broker).
    unsubscribe: OnceLock<mpsc::UnboundedSender<String>>,
    closed: AtomicBool,
}

impl<D: BusDriver> DriverBus<D> {
    /// The bus on `driver`, which reports into `inbox`.
    pub fn new(driver: D, inbox: Inbox) -> Self {
        DriverBus {
            driver: Arc::new(driver),
            inbox,
            unsubscribe: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// Channels this instance's connection is subscribed to.
    pub fn channel_count(&self) -> usize {
        self.inbox.channel_count()
    }

    /// Whether [`Bus::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn unsubscriber(&self) -> mpsc::UnboundedSender<String> {
        self.unsubscribe
            .get_or_init(|| {
                let (sender, requests) = mpsc::unbounded_channel();
                tokio::spawn(unsubscribe_emptied(
                    requests,
                    Arc::downgrade(&self.driver),
                    self.inbox.clone(),
                ));
                sender
            })
            .clone()
    }
}

/// Queues `channel`'s broker unsubscribe once (the flag keeps the queue within one entry per
/// channel, however often its last subscription comes and goes).
fn queue_unsubscribe(
    table: &inbox::Table,
    channel: &str,
    unsubscribe: &mpsc::UnboundedSender<String>,
) {
    let mut channels = table.channels.write();
    let Some(entry) = channels.get_mut(channel) else {
        return;
    };
    if entry.subscribers.is_empty() && !entry.unsubscribe_queued {
        entry.unsubscribe_queued = true;
        if unsubscribe.send(channel.to_owned()).is_err() {
            // The task that unsubscribes ended with its runtime: the channel stays subscribed
            // at the broker (its frames are dropped here), which the log says.
            tracing::warn!(
                backend = table.backend,
                channel,
                "cannot queue a broker unsubscribe"
            );
        }
    }
}

/// Unsubscribes channels whose last local subscription ended, if none came back meanwhile.
async fn unsubscribe_emptied<D: BusDriver>(
    mut requests: mpsc::UnboundedReceiver<String>,
    driver: Weak<D>,
    inbox: Inbox,
) {
    while let Some(channel) = requests.recv().await {
        let Some(driver) = driver.upgrade() else {
            return;
        };
        let _guard = inbox.lock().await;
        if let Some(entry) = inbox.table.channels.write().get_mut(&channel) {
            entry.unsubscribe_queued = false;
        }
        if inbox.remove_if_empty(&channel)
            && let Err(error) = driver.unsubscribe(&channel).await
        {
            tracing::warn!(backend = inbox.table.backend, %channel, %error, "unsubscribe failed");
        }
    }
}

impl<D: BusDriver> fmt::Debug for DriverBus<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverBus")
            .field("inbox", &self.inbox)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<D: BusDriver> Bus for DriverBus<D> {
    async fn publish(&self, event: &Event, origin: Origin) -> Result<()> {
        self.check_open()?;
        self.driver
            .publish(&event.channel, frame::encode(event, origin))
            .await
    }

    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.check_open()?;
        let unsubscribe = self.unsubscriber();
        let _guard = self.inbox.lock().await;
        // Closed while this waited for the lock: the table is gone, nothing may join it.
        self.check_open()?;
        let id = self.inbox.next_id();
        let table = Arc::downgrade(&self.inbox.table);
        let name = channel.to_owned();
        let queue = unsubscribe.clone();
        let (sender, subscription) =
            BusSubscription::channel(self.inbox.table.capacity, move || {
                let Some(table) = table.upgrade() else { return };
                let removed = table
                    .channels
                    .write()
                    .get_mut(&name)
                    .and_then(|c| c.subscribers.remove(&id));
                if removed.is_some() {
                    queue_unsubscribe(&table, &name, &queue);
                }
            });
        let first = {
            let mut channels = self.inbox.table.channels.write();
            let entry = channels.entry(channel.to_owned()).or_default();
            entry.subscribers.insert(id, sender);
            entry.subscribers.len() == 1
        };
        if first && let Err(error) = self.driver.subscribe(channel).await {
            // The broker may have applied it anyway: leave it to the unsubscribe queue.
            let removed = self
                .inbox
                .table
                .channels
                .write()
                .get_mut(channel)
                .and_then(|c| c.subscribers.remove(&id));
            if removed.is_some() {
                queue_unsubscribe(&self.inbox.table, channel, &unsubscribe);
            }
            return Err(error);
        }
        Ok(subscription)
    }

    fn reach(&self) -> Reach {
        self.driver.reach()
    }

    fn publish_target(&self, channel: &str) -> Option<PublishTarget> {
        if self.is_closed() {
            None
        } else {
            self.driver.publish_target(channel)
        }
    }

    async fn check(&self) -> Result<()> {
        self.check_open()?;
        self.driver.check().await
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let channels = {
            let _guard = self.inbox.lock().await;
            // Dropping the senders ends the subscriptions once they are drained.
            let mut table = self.inbox.table.channels.write();
            table.drain().map(|(name, _)| name).collect()
        };
        self.driver.close(channels).await
    }
}
