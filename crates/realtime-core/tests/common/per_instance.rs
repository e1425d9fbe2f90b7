//! Helpers for the per-instance history tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use realtime_core::{
    Bus, ChannelRequest, Client, Event, History, InMemoryStore, Manager, ManagerConfig, Message,
    Position, SubscribeRequest,
};

pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn per_instance(bus: Arc<dyn Bus>, linger: Duration) -> Manager {
    let mut config = ManagerConfig::default();
    config.history = History::PerInstance;
    config.history_linger = linger;
    Manager::builder()
        .config(config)
        .store(Arc::new(InMemoryStore::new()))
        .bus(bus)
        .build()
        .unwrap()
}

pub async fn next(client: &mut Client) -> Message {
    tokio::time::timeout(DEADLINE, client.recv())
        .await
        .expect("a message within the deadline")
        .expect("the client is open")
}

pub async fn next_event(client: &mut Client) -> Event {
    match next(client).await {
        Message::Event(event) => event.event().clone(),
        other => panic!("expected an event, got {other:?}"),
    }
}

pub fn text(event: &Event) -> String {
    String::from_utf8_lossy(&event.data).into_owned()
}

pub fn resume(channel: &str, position: Position) -> SubscribeRequest {
    SubscribeRequest {
        channels: vec![ChannelRequest::resume(channel, position.to_token())],
        ..Default::default()
    }
}

/// Subscribes with `from` until the replay holds `n` events (B's events reach A's store
/// through the bus, asynchronously).
pub async fn poll_until_replay(
    manager: &Manager,
    from: Position,
    n: usize,
) -> realtime_core::Subscription {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let sub = manager.subscribe(resume("c", from)).await.unwrap();
        if sub.replay[0].events.len() >= n || tokio::time::Instant::now() >= deadline {
            return sub;
        }
        drop(sub);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn poll(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two instances with per-instance history on one in-memory broker, each with a client on
/// channel `c` (the one on B only keeps B listening).
pub async fn two_listening_instances() -> (Manager, Manager, Client, Client) {
    let broker = realtime_core::InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let on_a = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    let on_b = b
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    (a, b, on_a, on_b)
}
