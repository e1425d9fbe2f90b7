//! `disconnect_everywhere` reaches an instance whose bus dropped the request: read back from
//! the shared store's history of the control channel, or, per instance (nothing to read
//! back), by closing the clients connected before the break.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use realtime_core::{
    Client, CloseReason, History, InMemoryBus, InMemoryStore, Manager, ManagerConfig,
    SubscribeRequest,
};

/// Bus subscriptions queue 4 messages: a listener that does not run meanwhile misses the
/// newest of a burst, and is told it was interrupted.
const QUEUE: usize = 4;

fn instance(bus: &InMemoryBus, store: &Arc<InMemoryStore>, history: History) -> Manager {
    let mut config = ManagerConfig::default();
    config.history = history;
    let builder = Manager::builder()
        .config(config)
        .bus(Arc::new(bus.connect()));
    match history {
        History::Shared => builder.store(store.clone()),
        _ => builder.store(Arc::new(InMemoryStore::new())),
    }
    .build()
    .unwrap()
}

async fn client(manager: &Manager, id: &str) -> Client {
    let mut request = SubscribeRequest::channel("c");
    request.client_id = Some(id.into());
    manager.subscribe(request).await.unwrap().client
}

/// Sends a burst of requests from `a` (the current-thread runtime runs no other task
/// meanwhile), the last one for `victim`: `b`'s listener keeps the first four.
async fn burst(a: &Manager, victim: &str) {
    for n in 0..10 {
        a.disconnect_everywhere(&format!("nobody-{n}"))
            .await
            .unwrap();
    }
    a.disconnect_everywhere(victim).await.unwrap();
}

async fn closed(client: &mut Client) -> Option<CloseReason> {
    // Drains until the stream ends, within a deadline.
    tokio::time::timeout(Duration::from_secs(10), async {
        while client.recv().await.is_some() {}
    })
    .await
    .expect("the client is closed within the deadline");
    client.close_reason()
}

#[tokio::test]
async fn a_request_the_bus_dropped_is_read_back_from_the_shared_store() {
    let bus = InMemoryBus::with_capacity(QUEUE);
    let store = Arc::new(InMemoryStore::new());
    let a = instance(&bus, &store, History::Shared);
    let b = instance(&bus, &store, History::Shared);
    let _on_a = client(&a, "someone").await;
    let mut victim = client(&b, "victim").await;
    let bystander = client(&b, "bystander").await;
    burst(&a, "victim").await;
    assert_eq!(closed(&mut victim).await, Some(CloseReason::Disconnected));
    assert_eq!(bystander.close_reason(), None, "only the named client");
}

#[tokio::test]
async fn per_instance_a_dropped_request_closes_the_clients_connected_before_the_break() {
    let bus = InMemoryBus::with_capacity(QUEUE);
    let store = Arc::new(InMemoryStore::new());
    let a = instance(&bus, &store, History::PerInstance);
    let b = instance(&bus, &store, History::PerInstance);
    let _on_a = client(&a, "someone").await;
    let mut victim = client(&b, "victim").await;
    let mut bystander = client(&b, "bystander").await;
    burst(&a, "victim").await;
    assert_eq!(closed(&mut victim).await, Some(CloseReason::Disconnected));
    // Nothing says whom the lost requests named: every client connected then goes (and
    // reconnects through the application's authorization).
    assert_eq!(
        closed(&mut bystander).await,
        Some(CloseReason::Disconnected)
    );
}
