//! The manager when its store or bus misbehaves: a stored event the bus refused still
//! reaches other instances; a subscribe against a store that never answers fails in time.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use realtime_core::{
    BackendError, BackendErrorKind, Bus, BusSubscription, Error, Event, InMemoryBus, InMemoryStore,
    Manager, ManagerConfig, Message, NewEvent, Position, PublishRequest, ReadResult, Result, Store,
    SubscribeRequest,
};

/// An in-memory bus connection whose first `failures` publishes fail as a lost connection.
struct FlakyBus {
    inner: InMemoryBus,
    failures: AtomicUsize,
}

#[async_trait]
impl Bus for FlakyBus {
    async fn publish(&self, event: &Event) -> Result<()> {
        let left = self.failures.load(Ordering::Acquire);
        if left > 0 {
            self.failures.store(left - 1, Ordering::Release);
            return Err(BackendError::new("flaky", BackendErrorKind::Connection, "down").into());
        }
        self.inner.publish(event).await
    }
    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.inner.subscribe(channel).await
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_stored_event_the_bus_refused_still_reaches_other_instances() {
    let store = Arc::new(InMemoryStore::new());
    let broker = InMemoryBus::new();
    let publisher = Manager::builder()
        .store(store.clone())
        .bus(Arc::new(FlakyBus {
            inner: broker.connect(),
            failures: AtomicUsize::new(3),
        }))
        .build()
        .unwrap();
    let receiver = Manager::builder()
        .store(store)
        .bus(Arc::new(broker))
        .build()
        .unwrap();
    let mut client = receiver
        .subscribe(SubscribeRequest::channel("orders"))
        .await
        .unwrap()
        .client;
    let stored = publisher
        .publish(PublishRequest::new("orders", "x"))
        .await
        .expect("the event is stored: the publish succeeds");
    match tokio::time::timeout(Duration::from_secs(10), client.recv()).await {
        Ok(Some(Message::Event(event))) => assert_eq!(event.id, stored.id),
        other => panic!("expected the event on the other instance, got {other:?}"),
    }
}

/// A store that never answers.
struct HangingStore;

#[async_trait]
impl Store for HangingStore {
    async fn append(&self, _: NewEvent) -> Result<Event> {
        std::future::pending().await
    }
    async fn read(&self, _: &str, _: Position, _: usize) -> Result<ReadResult> {
        std::future::pending().await
    }
    async fn head(&self, _: &str) -> Result<Position> {
        std::future::pending().await
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[tokio::test]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_subscribe_against_a_silent_store_times_out_and_releases_everything() {
    let mut config = ManagerConfig::default();
    config.subscribe_timeout = Duration::from_millis(200);
    let manager = Manager::builder()
        .config(config)
        .store(Arc::new(HangingStore))
        .build()
        .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        manager.subscribe(SubscribeRequest::channel("orders")),
    )
    .await
    .expect("the subscribe's own timeout ends it");
    match outcome {
        Err(error @ Error::Backend(_)) => assert!(error.is_retryable(), "{error}"),
        other => panic!("expected a retryable timeout, got {other:?}"),
    }
    assert_eq!(
        (manager.connection_count(), manager.channel_count()),
        (0, 0)
    );
}
