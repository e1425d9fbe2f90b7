//! The in-memory backend, as a [`Backend`]: run by `cargo test`.

use std::sync::Arc;

use async_trait::async_trait;
use realtime_core::{Bus, InMemoryBus, InMemoryStore, InMemoryStoreConfig, Result, Store};

use crate::Backend;

/// Events kept per channel by [`MemoryBackend`]'s store.
pub const MAX_EVENTS: usize = 50;

/// One in-process broker and store; each [`Backend::bus`] call connects another instance.
#[derive(Debug)]
pub struct MemoryBackend {
    store: Arc<InMemoryStore>,
    broker: InMemoryBus,
}

impl MemoryBackend {
    /// A fresh store and broker.
    pub fn new() -> Result<Self> {
        let mut config = InMemoryStoreConfig::default();
        config.max_events_per_channel = MAX_EVENTS;
        Ok(MemoryBackend {
            store: Arc::new(config.build()?),
            broker: InMemoryBus::new(),
        })
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        Ok(Arc::new(self.broker.connect()))
    }

    fn max_events_per_channel(&self) -> usize {
        MAX_EVENTS
    }

    async fn lose_history(&self, channel: &str) -> Result<()> {
        self.store.forget(channel);
        Ok(())
    }
}
