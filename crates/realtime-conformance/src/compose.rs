//! Backends made of other backends: the suite in per-instance mode, or a bus-only backend
//! with another one's store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use realtime_core::{Bus, History, InMemoryStore, InMemoryStoreConfig, Result, Store};

use crate::Backend;

/// Runs the suite in [`History::PerInstance`] mode on `B`'s bus: every
/// [`Backend::store`] call is another instance's own in-memory store, and `B`'s store is
/// never used (so a bus-only backend runs here). Tests that need a shared store skip, by
/// name.
pub struct PerInstance<B> {
    inner: B,
    stores: Mutex<Vec<Arc<InMemoryStore>>>,
}

impl<B: Backend> PerInstance<B> {
    /// `inner`'s bus, with per-instance stores.
    pub fn new(inner: B) -> Self {
        PerInstance {
            inner,
            stores: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl<B: Backend> Backend for PerInstance<B> {
    /// A new instance's own store (each call another one).
    async fn store(&self) -> Result<Arc<dyn Store>> {
        let mut config = InMemoryStoreConfig::default();
        config.max_events_per_channel = self.inner.max_events_per_channel();
        let store = Arc::new(config.build()?);
        self.stores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store.clone());
        Ok(store)
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        self.inner.bus().await
    }

    fn max_events_per_channel(&self) -> usize {
        self.inner.max_events_per_channel()
    }

    /// Loses the channel's history on every instance.
    async fn lose_history(&self, channel: &str) -> Result<()> {
        for store in self.stores.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            store.forget(channel);
        }
        Ok(())
    }

    fn history(&self) -> History {
        History::PerInstance
    }
}

/// A bus-only backend (one with no store of its own) in [`History::Shared`] mode: `B`'s bus
/// with `S`'s store, shared by every instance (e.g. a Kafka bus with a Redis store).
pub struct WithStore<S, B> {
    store: S,
    bus: B,
}

impl<S: Backend, B: Backend> WithStore<S, B> {
    /// `bus`'s bus connections with `store`'s store.
    pub fn new(store: S, bus: B) -> Self {
        WithStore { store, bus }
    }
}

#[async_trait]
impl<S: Backend, B: Backend> Backend for WithStore<S, B> {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        self.store.store().await
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        self.bus.bus().await
    }

    fn max_events_per_channel(&self) -> usize {
        self.store.max_events_per_channel()
    }

    async fn lose_history(&self, channel: &str) -> Result<()> {
        self.store.lose_history(channel).await
    }
}

/// A boxed future, as the parts below keep their closures.
type Boxed<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;

/// The store half of a backend for [`WithStore`]: one store every instance shares, and how
/// to lose a channel's history in it (e.g. `RedisStore::forget`). It makes no buses.
pub struct SharedStore {
    store: Arc<dyn Store>,
    max_events: usize,
    forget: Box<dyn Fn(String) -> Boxed<()> + Send + Sync>,
}

impl SharedStore {
    /// `store`, keeping `max_events` per channel; `forget(channel)` destroys a channel's
    /// history as an outage would.
    pub fn new<F, Fut>(store: Arc<dyn Store>, max_events: usize, forget: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        SharedStore {
            store,
            max_events,
            forget: Box::new(move |channel| Box::pin(forget(channel))),
        }
    }
}

#[async_trait]
impl Backend for SharedStore {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        Err(realtime_core::Error::InvalidConfig {
            field: "bus",
            reason: "a SharedStore makes no buses: pair it with one in WithStore".into(),
        })
    }

    fn max_events_per_channel(&self) -> usize {
        self.max_events
    }

    async fn lose_history(&self, channel: &str) -> Result<()> {
        (self.forget)(channel.to_owned()).await
    }
}

/// The bus half of a backend: every [`Backend::bus`] call runs `make` (another instance's
/// connection). With [`PerInstance`] it is a whole backend; with [`WithStore`] it gets a
/// shared store.
pub struct BusOnly {
    max_events: usize,
    make: Box<dyn Fn() -> Boxed<Arc<dyn Bus>> + Send + Sync>,
    /// Runs when the backend value is dropped, however the test ended (see
    /// [`BusOnly::cleanup`]).
    cleanup: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for BusOnly {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

impl BusOnly {
    /// Buses from `make`; the per-instance stores [`PerInstance`] gives it keep
    /// `max_events` per channel.
    pub fn new<F, Fut, B>(max_events: usize, make: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<B>> + Send + 'static,
        B: Bus,
    {
        BusOnly {
            max_events,
            make: Box::new(move || {
                let bus = make();
                Box::pin(async move { Ok(Arc::new(bus.await?) as Arc<dyn Bus>) })
            }),
            cleanup: None,
        }
    }

    /// Runs `cleanup` when this value is dropped, at the end of the test whatever its
    /// outcome: to remove what the buses left at the broker (a bus dropped without `close`
    /// leaves its queue, say). It runs inside `Drop`, so it must block, not await.
    pub fn cleanup(mut self, cleanup: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.cleanup = Some(Box::new(cleanup));
        self
    }
}

#[async_trait]
impl Backend for BusOnly {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Err(realtime_core::Error::InvalidConfig {
            field: "store",
            reason: "a BusOnly backend has no store: wrap it in PerInstance or WithStore".into(),
        })
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        (self.make)().await
    }

    fn max_events_per_channel(&self) -> usize {
        self.max_events
    }

    /// Nothing to lose: [`PerInstance`] loses its own stores' history.
    async fn lose_history(&self, _channel: &str) -> Result<()> {
        Ok(())
    }
}
