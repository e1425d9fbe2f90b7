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
