//! The manager: local clients, publishing, replay and fan-out.

mod catch_up;
mod client;
mod config;
mod control;
mod foreign;
mod hub;
mod linger;
mod membership;
mod publish;
mod queue;
mod repair;
mod replay;
mod request;
mod shutdown;
mod spawn;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};

pub use client::Client;
use client::Membership;
pub use config::{ManagerConfig, SlowConsumer};
pub use control::CONTROL_CHANNEL;
use hub::Hub;
use queue::ClientShared;
pub use queue::{CloseReason, Message};
pub use request::{ChannelRequest, PublishRequest, Replay, SubscribeRequest, Subscription};
pub use shutdown::Readiness;
use spawn::Spawner;

use crate::bus::Bus;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::frame::Origin;
use crate::history::History;
use crate::memory::{InMemoryBus, InMemoryStore};
use crate::metrics as m;
use crate::store::Store;

/// Serves local clients and fans events out across instances.
///
/// Cheap to clone (all clones share one manager). See the crate docs for the guarantees.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: ManagerConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    /// Shared with lingering releases ([`ManagerConfig::history_linger`]).
    hubs: Arc<Hubs>,
    lingering: Arc<linger::Slots>,
    /// This instance, as the bus names the events it publishes.
    origin: Origin,
    /// Per-instance history: this instance's bus sequence per channel (the next position).
    streams: Mutex<HashMap<Arc<str>, crate::Position>>,
    /// Connected clients by id (several may share one: a user's tabs, or a reconnect that
    /// arrives before the old stream is noticed gone).
    clients: Mutex<HashMap<Arc<str>, Vec<std::sync::Weak<ClientShared>>>>,
    connections: AtomicUsize,
    closed: AtomicBool,
    /// Background bus hand-offs in flight.
    rebroadcasts: AtomicUsize,
    /// The per-event warnings of a bus that refuses publishes: not handed over, given up.
    bus_refused_warnings: crate::throttle::Throttle,
    bus_gave_up_warnings: crate::throttle::Throttle,
    /// Woken when the last client is released.
    drained: tokio::sync::Notify,
    spawner: Spawner,
    /// Listens to requests from other instances (started by the first subscribe).
    control: tokio::sync::Mutex<Option<control::Listener>>,
}

type Hubs = RwLock<HashMap<Arc<str>, Arc<Hub>>>;

/// Builds a [`Manager`]; the store and bus default to in-memory ones.
#[derive(Default)]
pub struct ManagerBuilder {
    config: ManagerConfig,
    store: Option<Arc<dyn Store>>,
    bus: Option<Arc<dyn Bus>>,
    runtime: Option<tokio::runtime::Handle>,
}

impl ManagerBuilder {
    /// Runs the manager's background tasks (bus readers, repairs, re-broadcasts, linger
    /// timers) on `runtime`. By default each runs on the runtime of the task that starts it
    /// — with a server whose workers each run their own runtime (actix-web), a channel's
    /// reader would then live and die with the worker of its first subscriber; give the
    /// runtime that outlives them (`tokio::runtime::Handle::current()` in `main`).
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Uses `config`, replacing the whole configuration (a [`history`](Self::history) set
    /// before included: call that after this).
    ///
    /// ```
    /// # fn main() -> realtime_core::Result<()> {
    /// use realtime_core::{Manager, ManagerConfig};
    ///
    /// // The config is `#[non_exhaustive]`: start from the defaults and set fields.
    /// let mut config = ManagerConfig::default();
    /// config.replay_limit = 500;
    /// config.client_buffer = 1_024;
    /// let manager = Manager::builder().config(config).build()?;
    /// # drop(manager);
    /// # Ok(()) }
    /// ```
    pub fn config(mut self, config: ManagerConfig) -> Self {
        self.config = config;
        self
    }

    /// Uses `store` for positions and history: shared by all instances, unless
    /// [`History::PerInstance`] (then each instance's own). Default: an
    /// [`InMemoryStore`](crate::InMemoryStore) with its default bounds.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `bus` to reach the other instances.
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Keeps history as `history` says ([`ManagerConfig::history`]).
    ///
    /// ```
    /// # fn main() -> realtime_core::Result<()> {
    /// use std::sync::Arc;
    /// use realtime_core::{History, InMemoryBus, Manager};
    ///
    /// let bus = Arc::new(InMemoryBus::new()); // in production a bus other processes reach
    /// let manager = Manager::builder()
    ///     .history(History::PerInstance) // the store defaults to this process's InMemoryStore
    ///     .bus(bus)
    ///     .build()?;
    /// # drop(manager);
    /// # Ok(()) }
    /// ```
    pub fn history(mut self, history: History) -> Self {
        self.config.history = history;
        self
    }

    /// Validates the configuration and builds the manager.
    ///
    /// Refuses, with [`Error::InvalidConfig`] for `history`, a store and bus that cannot
    /// honour [`ManagerConfig::history`]: in [`History::Shared`] mode a store that lives in
    /// this process with a bus that reaches other processes (their events would be lost
    /// without a word), and in [`History::PerInstance`] mode a store other processes reach.
    pub fn build(self) -> Result<Manager> {
        self.config.validate()?;
        let store: Arc<dyn Store> = self.store.unwrap_or_else(|| Arc::new(InMemoryStore::new()));
        let bus: Arc<dyn Bus> = self.bus.unwrap_or_else(|| Arc::new(InMemoryBus::new()));
        crate::history::check(self.config.history, store.reach(), bus.reach())?;
        let lingering = Arc::new(linger::Slots::new(self.config.max_lingering_channels));
        Ok(Manager {
            inner: Arc::new(Inner {
                config: self.config,
                store,
                bus,
                hubs: Arc::new(RwLock::new(HashMap::new())),
                lingering,
                origin: Origin::fresh(),
                streams: Mutex::new(HashMap::new()),
                clients: Mutex::new(HashMap::new()),
                connections: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                rebroadcasts: AtomicUsize::new(0),
                bus_refused_warnings: crate::throttle::Throttle::new(crate::throttle::WARN_EVERY),
                bus_gave_up_warnings: crate::throttle::Throttle::new(crate::throttle::WARN_EVERY),
                drained: tokio::sync::Notify::new(),
                spawner: Spawner::on(self.runtime),
                control: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

impl Manager {
    /// A builder with the default configuration and in-memory store and bus.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Clients connected to this instance.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// Channels this instance holds a bus subscription for (one per channel with local
    /// clients, and in per-instance mode the ones lingering after their last client left).
    pub fn channel_count(&self) -> usize {
        self.inner.hubs.read().len()
    }

    /// Whether [`Manager::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Registers a client for its channels and reads what it missed.
    ///
    /// Live delivery starts before history is read and the two are merged by offset, so no
    /// event is lost or repeated between the replay and the live stream.
    pub async fn subscribe(&self, request: SubscribeRequest) -> Result<Subscription> {
        let inner = &self.inner;
        inner.check_open()?;
        let route = inner.validate_subscribe(&request)?;
        // Before any client is here: a request for it cannot pass this instance by.
        inner.ensure_control().await?;
        inner.reserve_connection()?;
        let id: Arc<str> = match request.client_id {
            Some(id) => id.into(),
            // Random, not a counter: an id says nothing of how many clients there are, and
            // cannot be guessed to disconnect someone else's stream.
            None => format!(
                "{}-{:016x}",
                inner.config.instance_id,
                crate::frame::Origin::fresh().0
            )
            .into(),
        };
        let shared = Arc::new(ClientShared::new(
            id.clone(),
            route,
            inner.config.client_buffer,
            inner.config.slow_consumer == SlowConsumer::SkipWithGap,
            inner.config.max_lag,
        ));
        // From here the client's Drop releases the connection and every membership taken.
        let mut client = Client {
            shared: shared.clone(),
            memberships: Vec::new(),
            manager: inner.clone(),
        };
        inner
            .clients
            .lock()
            .entry(id.clone())
            .or_default()
            .push(Arc::downgrade(&shared));
        let tenant = client.shared.route.tenant.clone();
        let channels = inner.scoped_requests(tenant.as_deref(), request.channels);
        let replay = client.join_validated(channels).await?;
        tracing::debug!(client = %id, channels = client.memberships.len(), "subscribed");
        Ok(Subscription { client, replay })
    }

    /// Closes every connected client with [`CloseReason::Disconnected`] (they may resume
    /// from their last position) and returns how many there were.
    pub fn disconnect_all(&self) -> usize {
        self.inner.close_clients(CloseReason::Disconnected)
    }

    /// Shuts down: every client's stream ends with [`CloseReason::Shutdown`] (so browsers
    /// reconnect elsewhere), bus subscriptions end, then the bus and store are closed.
    /// Later calls to `publish` and `subscribe` return [`Error::Closed`]. Idempotent.
    pub async fn close(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let clients = inner.close_clients(CloseReason::Shutdown);
        let hubs: Vec<_> = inner.hubs.write().drain().map(|(_, hub)| hub).collect();
        for hub in &hubs {
            hub.shutdown();
        }
        tracing::info!(instance = %inner.config.instance_id, clients, "manager closed");
        let bus = inner.bus.close().await;
        let store = inner.store.close().await;
        bus.and(store)
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("config", &self.inner.config)
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Delivers a just-stored event to this instance's clients of its channel, if any.
    fn offer_local(&self, event: &Event) {
        let hub = self.hubs.read().get(event.channel.as_str()).cloned();
        if let Some(hub) = hub {
            hub.offer(event.clone());
        }
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn reserve_connection(&self) -> Result<()> {
        let limit = self.config.max_connections;
        let reserved = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        match reserved {
            Ok(n) => {
                metrics::gauge!(m::CONNECTIONS).set((n + 1) as f64);
                Ok(())
            }
            Err(_) => {
                metrics::counter!(m::REJECTED).increment(1);
                Err(Error::TooManyConnections { limit })
            }
        }
    }

    /// The hub for `channel`, created if needed, with one more reference held.
    pub(super) fn acquire_hub(&self, channel: &str) -> Arc<Hub> {
        // The reference is taken under the map lock so that a concurrent release (which
        // re-checks the count under the write lock) cannot remove a hub being joined.
        if let Some(hub) = self.hubs.read().get(channel) {
            hub.refs.fetch_add(1, Ordering::AcqRel);
            return hub.clone();
        }
        let mut hubs = self.hubs.write();
        let hub = hubs.entry(Arc::from(channel)).or_insert_with_key(|name| {
            Arc::new(Hub::new(
                name.clone(),
                self.store.clone(),
                self.config.repair_patience,
                (self.config.history == History::PerInstance).then_some(self.origin),
                self.spawner.clone(),
            ))
        });
        hub.refs.fetch_add(1, Ordering::AcqRel);
        hub.clone()
    }

    pub(crate) fn release_client(&self, client: &Arc<ClientShared>, memberships: &[Membership]) {
        for membership in memberships {
            membership.hub.remove_client(membership.slot);
            self.release_hub(&membership.hub);
        }
        {
            let mut clients = self.clients.lock();
            if let Some(all) = clients.get_mut(&client.id) {
                all.retain(|c| !std::ptr::eq(c.as_ptr(), Arc::as_ptr(client)));
                if all.is_empty() {
                    clients.remove(&client.id);
                }
            }
        }
        let left = self.connections.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!(m::CONNECTIONS).set(left as f64);
        if left == 0 {
            self.drained.notify_waiters();
        }
    }
}
