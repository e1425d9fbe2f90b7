//! Live repair on a single-threaded runtime: a repair that never yields would hang it.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use realtime_core::{
    Bus, BusSubscription, Event, InMemoryBus, InMemoryStore, Manager, Message, PublishRequest,
    Result, SubscribeRequest,
};

/// An in-memory bus connection that silently loses its second publish.
struct LossyBus {
    inner: InMemoryBus,
    published: AtomicUsize,
}

#[async_trait]
impl Bus for LossyBus {
    async fn publish(&self, event: &Event) -> Result<()> {
        if self.published.fetch_add(1, Ordering::AcqRel) == 1 {
            return Ok(());
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

/// The bus loses event 2 and carries event 3; the repair reads both from the store. The
/// held copy of 3 is then done with: the repair must end, and later events flow. (It used
/// to loop on the store forever, which on one thread hangs everything.)
#[test]
fn a_repaired_hole_ends_the_repair() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Arc::new(InMemoryStore::new());
            let broker = InMemoryBus::new();
            let publisher = Manager::builder()
                .store(store.clone())
                .bus(Arc::new(LossyBus {
                    inner: broker.connect(),
                    published: AtomicUsize::new(0),
                }))
                .build()
                .unwrap();
            let receiver = Manager::builder()
                .store(store)
                .bus(Arc::new(broker))
                .build()
                .unwrap();
            let mut client = receiver
                .subscribe(SubscribeRequest::channel("c"))
                .await
                .unwrap()
                .client;
            let mut ids = Vec::new();
            for i in 0..5 {
                ids.push(
                    publisher
                        .publish(PublishRequest::new("c", format!("{i}")))
                        .await
                        .unwrap()
                        .id,
                );
                // Let the receiver's bus reader and any repair run between publishes.
                for _ in 0..10 {
                    tokio::task::yield_now().await;
                }
            }
            let mut got = Vec::new();
            while got.len() < ids.len() {
                match client.recv().await {
                    Some(Message::Event(event)) => got.push(event.id),
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(got, ids);
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("the runtime was hung by a repair that never ends");
}
