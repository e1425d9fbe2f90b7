use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::bus::{Bus, BusMessage, BusSender, BusSubscription};
use crate::error::{Error, Result};
use crate::event::Event;

/// Default queue length of one subscription; a subscriber further behind is told it was
/// interrupted and repairs from the store.
const DEFAULT_CAPACITY: usize = 4_096;

/// A bus inside one process.
///
/// [`InMemoryBus::new`] creates a broker and a first instance's connection to it;
/// [`InMemoryBus::connect`] another instance's connection to the same broker. Each delivers to
/// every subscription of every connection, in publish order per channel.
pub struct InMemoryBus {
    broker: Arc<Broker>,
    instance: u64,
    closed: AtomicBool,
}

#[derive(Default)]
struct Broker {
    channels: RwLock<HashMap<String, HashMap<u64, Subscriber>>>,
    next_instance: AtomicU64,
    // Subscription ids are never reused, so a late unsubscribe cannot remove another's.
    next_subscription: AtomicU64,
    capacity: usize,
}

struct Subscriber {
    instance: u64,
    sender: BusSender,
}

impl InMemoryBus {
    /// A new broker and this instance's connection to it.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Like [`InMemoryBus::new`], with `capacity` messages queued per subscription at most.
    pub fn with_capacity(capacity: usize) -> Self {
        let broker = Arc::new(Broker {
            capacity: capacity.max(1),
            ..Broker::default()
        });
        Self::attach(broker)
    }

    /// Another instance's connection to the same broker.
    pub fn connect(&self) -> Self {
        Self::attach(self.broker.clone())
    }

    fn attach(broker: Arc<Broker>) -> Self {
        let instance = broker.next_instance.fetch_add(1, Ordering::Relaxed);
        InMemoryBus {
            broker,
            instance,
            closed: AtomicBool::new(false),
        }
    }

    /// Subscriptions this connection holds, over all channels.
    pub fn subscription_count(&self) -> usize {
        let channels = self.broker.channels.read();
        channels
            .values()
            .map(|subs| {
                subs.values()
                    .filter(|s| s.instance == self.instance)
                    .count()
            })
            .sum()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

impl Default for InMemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InMemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryBus")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for InMemoryBus {
    async fn publish(&self, event: &Event, origin: crate::Origin) -> Result<()> {
        self.check_open()?;
        let channels = self.broker.channels.read();
        if let Some(subscribers) = channels.get(&event.channel) {
            for subscriber in subscribers.values() {
                subscriber
                    .sender
                    .send(BusMessage::Event(event.clone(), origin));
            }
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.check_open()?;
        let mut channels = self.broker.channels.write();
        let key = self
            .broker
            .next_subscription
            .fetch_add(1, Ordering::Relaxed);
        let broker = Arc::downgrade(&self.broker);
        let name = channel.to_owned();
        let (sender, subscription) = BusSubscription::channel(self.broker.capacity, move || {
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let mut channels = broker.channels.write();
            if let Some(subscribers) = channels.get_mut(&name) {
                subscribers.remove(&key);
                if subscribers.is_empty() {
                    channels.remove(&name);
                }
            }
        });
        let subscriber = Subscriber {
            instance: self.instance,
            sender,
        };
        channels
            .entry(channel.to_owned())
            .or_default()
            .insert(key, subscriber);
        Ok(subscription)
    }

    fn reach(&self) -> crate::Reach {
        crate::Reach::Process
    }

    async fn check(&self) -> Result<()> {
        self.check_open()
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Dropping the senders ends this instance's subscriptions once they are drained.
        let mut channels = self.broker.channels.write();
        for subscribers in channels.values_mut() {
            subscribers.retain(|_, s| s.instance != self.instance);
        }
        channels.retain(|_, subscribers| !subscribers.is_empty());
        Ok(())
    }
}
