//! The per-instance subscriber table a driver reports into.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::bus::{BusMessage, BusSender};
use crate::frame;
use crate::metrics as m;

/// Where a [`BusDriver`](super::BusDriver) reports what arrives and what happened to its
/// connection; [`DriverBus`](super::DriverBus) hands it to the local subscriptions. Cheap to
/// clone; never blocks.
#[derive(Clone)]
pub struct Inbox {
    pub(super) table: Arc<Table>,
}

pub(super) struct Table {
    pub(super) backend: &'static str,
    pub(super) capacity: usize,
    pub(super) channels: RwLock<HashMap<String, Channel>>,
    pub(super) next_id: AtomicU64,
    /// Serialises broker subscribes and unsubscribes (and a driver's resubscription), so a
    /// late unsubscribe cannot undo a subscribe.
    pub(super) ops: tokio::sync::Mutex<()>,
    /// Whoever can publish to the broker can send unreadable frames: one log line a second.
    log_gate: LogGate,
}

/// Opens at most once a second.
#[derive(Default)]
struct LogGate {
    last: parking_lot::Mutex<Option<std::time::Instant>>,
}

impl LogGate {
    fn open(&self) -> bool {
        let mut last = self.last.lock();
        let now = std::time::Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < std::time::Duration::from_secs(1)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

#[derive(Default)]
pub(super) struct Channel {
    pub(super) subscribers: HashMap<u64, BusSender>,
    /// The connection dropped since this channel was last confirmed subscribed: its
    /// subscribers are told they were interrupted once it is subscribed again.
    interrupted: bool,
    /// Its broker unsubscribe waits in the queue.
    pub(super) unsubscribe_queued: bool,
}

/// Held while a driver subscribes channels again, so no subscribe or unsubscribe of the
/// [`DriverBus`](super::DriverBus) runs meanwhile.
pub struct InboxGuard<'a> {
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl Inbox {
    /// An inbox for `backend` (its name in metrics and logs) whose subscriptions queue at most
    /// `capacity` messages each (a subscription further behind is told it was interrupted).
    pub fn new(backend: &'static str, capacity: usize) -> Inbox {
        Inbox {
            table: Arc::new(Table {
                backend,
                capacity: capacity.max(1),
                channels: RwLock::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                ops: tokio::sync::Mutex::new(()),
                log_gate: LogGate::default(),
            }),
        }
    }

    /// A frame arrived for `channel`: decoded once and queued to each local subscription of
    /// the channel. A frame that cannot be read (another format version, damage) is counted
    /// (`realtime_bus_decode_errors_total{backend}`), logged, and turned into
    /// [`BusMessage::Interrupted`] for the channel's subscriptions, which then repair from the
    /// store or report a gap.
    pub fn frame(&self, channel: &str, frame: &[u8]) {
        let channels = self.table.channels.read();
        let Some(entry) = channels.get(channel) else {
            return;
        };
        match frame::decode(channel, frame) {
            Ok((event, origin)) => {
                for sender in entry.subscribers.values() {
                    sender.send(BusMessage::Event(event.clone(), origin));
                }
            }
            Err(error) => {
                let backend = self.table.backend;
                if self.table.log_gate.open() {
                    tracing::warn!(backend, channel, %error, "unreadable bus frame (logged at most once a second)");
                }
                metrics::counter!(m::BUS_DECODE_ERRORS, "backend" => backend).increment(1);
                for sender in entry.subscribers.values() {
                    sender.interrupted();
                }
            }
        }
    }

    /// Tells every local subscription of `channel` it may have missed frames, now (e.g. the
    /// broker refused the channel's subscription, or dropped frames of it).
    pub fn interrupt(&self, channel: &str) {
        if let Some(entry) = self.table.channels.read().get(channel) {
            for sender in entry.subscribers.values() {
                sender.interrupted();
            }
        }
    }

    /// The connection dropped: every channel may lose frames until it is subscribed again
    /// ([`Inbox::resubscribed`]).
    pub fn connection_lost(&self) {
        for channel in self.table.channels.write().values_mut() {
            channel.interrupted = true;
        }
    }

    /// The broker dropped `channel`'s subscription by itself (a cluster node that no longer
    /// owns its slot): frames may be lost until it is subscribed again, which the driver's
    /// next [`Inbox::to_resubscribe`] includes; its subscriptions are told then
    /// ([`Inbox::resubscribed`]).
    pub fn subscription_lost(&self, channel: &str) {
        if let Some(entry) = self.table.channels.write().get_mut(channel) {
            entry.interrupted = true;
        }
    }

    /// `channel` is subscribed on a live connection again: if frames may have been lost
    /// since [`Inbox::connection_lost`], its subscriptions are told they were interrupted —
    /// only now, so that their repair cannot miss what arrives next.
    pub fn resubscribed(&self, channel: &str) {
        let mut channels = self.table.channels.write();
        if let Some(entry) = channels.get_mut(channel).filter(|c| c.interrupted) {
            entry.interrupted = false;
            for sender in entry.subscribers.values() {
                sender.interrupted();
            }
        }
    }

    /// The channels a driver must subscribe again after its connection came back: those not
    /// confirmed since it was lost, or, with `all`, every channel (when a confirmation seen
    /// meanwhile may have come from a connection replaced since).
    pub fn to_resubscribe(&self, all: bool) -> Vec<String> {
        let mut channels = self.table.channels.write();
        channels
            .iter_mut()
            .filter_map(|(name, channel)| {
                channel.interrupted |= all;
                channel.interrupted.then(|| name.clone())
            })
            .collect()
    }

    /// Waits until no subscribe or unsubscribe runs, and holds them off while the guard lives.
    pub async fn lock(&self) -> InboxGuard<'_> {
        InboxGuard {
            _guard: self.table.ops.lock().await,
        }
    }

    /// The channels with at least one local subscription.
    pub fn channels(&self) -> Vec<String> {
        self.table.channels.read().keys().cloned().collect()
    }

    /// Channels with at least one local subscription.
    pub fn channel_count(&self) -> usize {
        self.table.channels.read().len()
    }

    /// Removes `channel` if it has no subscription left; whether it did.
    pub(super) fn remove_if_empty(&self, channel: &str) -> bool {
        let mut channels = self.table.channels.write();
        let empty = channels
            .get(channel)
            .is_some_and(|c| c.subscribers.is_empty());
        if empty {
            channels.remove(channel);
        }
        empty
    }

    pub(super) fn next_id(&self) -> u64 {
        self.table.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("backend", &self.table.backend)
            .field("channels", &self.channel_count())
            .finish()
    }
}
