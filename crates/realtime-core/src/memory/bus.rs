use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::bus::Bus;
use crate::driver::{BusDriver, DriverBus, Inbox, OnDriver};
use crate::error::Result;
use crate::history::Reach;

/// Default queue length of one subscription; a subscriber further behind is told it was
/// interrupted and repairs from the store.
const DEFAULT_CAPACITY: usize = 4_096;

/// A bus inside one process.
///
/// [`InMemoryBus::new`] creates a broker and a first instance's connection to it;
/// [`InMemoryBus::connect`] another instance's connection to the same broker. Each delivers to
/// every subscription of every connection, in publish order per channel. It is a
/// [`BusDriver`] like any other: events travel as [`frame`](crate::frame)s, so it exercises
/// the same path a network bus does.
pub struct InMemoryBus {
    bus: DriverBus<MemoryDriver>,
    broker: Arc<Broker>,
    capacity: usize,
}

#[derive(Default)]
struct Broker {
    /// Per channel, the inboxes of the connections subscribed to it, by connection.
    channels: RwLock<HashMap<String, HashMap<u64, Inbox>>>,
    next_connection: AtomicU64,
}

/// One connection to a [`Broker`].
struct MemoryDriver {
    broker: Arc<Broker>,
    connection: u64,
    inbox: Inbox,
}

impl InMemoryBus {
    /// A new broker and this instance's connection to it.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// Like [`InMemoryBus::new`], with `capacity` messages queued per subscription at most.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::attach(Arc::new(Broker::default()), capacity.max(1))
    }

    /// Another instance's connection to the same broker.
    pub fn connect(&self) -> Self {
        Self::attach(self.broker.clone(), self.capacity)
    }

    fn attach(broker: Arc<Broker>, capacity: usize) -> Self {
        let inbox = Inbox::new("memory", capacity);
        let driver = MemoryDriver {
            connection: broker.next_connection.fetch_add(1, Ordering::Relaxed),
            broker: broker.clone(),
            inbox: inbox.clone(),
        };
        InMemoryBus {
            bus: DriverBus::new(driver, inbox),
            broker,
            capacity,
        }
    }

    /// Channels this connection is subscribed to.
    pub fn subscription_count(&self) -> usize {
        self.bus.channel_count()
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
            .field("connection", &self.bus.driver().connection)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl BusDriver for MemoryDriver {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        let channels = self.broker.channels.read();
        for inbox in channels.get(channel).into_iter().flat_map(HashMap::values) {
            inbox.frame(channel, &frame);
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let mut channels = self.broker.channels.write();
        let connections = channels.entry(channel.to_owned()).or_default();
        connections.insert(self.connection, self.inbox.clone());
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let mut channels = self.broker.channels.write();
        if let Some(connections) = channels.get_mut(channel) {
            connections.remove(&self.connection);
            if connections.is_empty() {
                channels.remove(channel);
            }
        }
        Ok(())
    }

    fn reach(&self) -> Reach {
        Reach::Process
    }

    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        let mut channels = self.broker.channels.write();
        for connections in channels.values_mut() {
            connections.remove(&self.connection);
        }
        channels.retain(|_, connections| !connections.is_empty());
        Ok(())
    }
}

impl OnDriver for InMemoryBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}
