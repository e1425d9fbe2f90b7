//! A bus that misbehaves on purpose, for the manager's fault tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod per_instance;

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use realtime_core::{
    BackendError, BackendErrorKind, Bus, BusSubscription, Event, InMemoryBus, InMemoryStore,
    Manager, ManagerConfig, Result,
};

/// Two instances on one in-memory store and broker: a publisher whose bus connection is made
/// by `flaky`, and a receiver with `config` on a plain one.
pub fn publisher_and_receiver(
    flaky: impl FnOnce(InMemoryBus) -> FlakyBus,
    config: ManagerConfig,
) -> (Manager, Manager) {
    let store = Arc::new(InMemoryStore::new());
    let broker = InMemoryBus::new();
    let publisher = Manager::builder()
        .store(store.clone())
        .bus(Arc::new(flaky(broker.connect())))
        .build()
        .unwrap();
    let receiver = Manager::builder()
        .config(config)
        .store(store)
        .bus(Arc::new(broker))
        .build()
        .unwrap();
    (publisher, receiver)
}

/// An in-memory bus connection whose publishes numbered `failing` (0 is the first) fail as a
/// lost connection, or, with `silent`, are lost without a word (a broker dropping messages).
pub struct FlakyBus {
    inner: InMemoryBus,
    failing: Range<usize>,
    silent: bool,
    published: AtomicUsize,
}

impl FlakyBus {
    /// Publishes in `failing` fail with a retryable error.
    pub fn refusing(inner: InMemoryBus, failing: Range<usize>) -> Self {
        FlakyBus {
            inner,
            failing,
            silent: false,
            published: AtomicUsize::new(0),
        }
    }

    /// Publishes in `failing` are lost silently.
    pub fn losing(inner: InMemoryBus, failing: Range<usize>) -> Self {
        FlakyBus {
            silent: true,
            ..Self::refusing(inner, failing)
        }
    }
}

#[async_trait]
impl Bus for FlakyBus {
    async fn publish(&self, event: &Event, origin: realtime_core::Origin) -> Result<()> {
        if self
            .failing
            .contains(&self.published.fetch_add(1, Ordering::AcqRel))
        {
            if self.silent {
                return Ok(());
            }
            return Err(BackendError::new("flaky", BackendErrorKind::Connection, "down").into());
        }
        self.inner.publish(event, origin).await
    }
    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.inner.subscribe(channel).await
    }
    fn reach(&self) -> realtime_core::Reach {
        self.inner.reach()
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}
