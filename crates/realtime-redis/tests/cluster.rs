//! Two instances on one Redis: resume across instances, the key layout, one-trip publish.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{RedisBackend, admin};
use realtime_core::{
    ChannelRequest, Manager, ManagerConfig, Message, Origin, PublishRequest, SubscribeRequest,
};

const DEADLINE: Duration = Duration::from_secs(20);

async fn instance(backend: &RedisBackend) -> Manager {
    let mut config = ManagerConfig::default();
    config.client_buffer = 1_024;
    Manager::builder()
        .config(config)
        .store(backend.store.clone())
        .bus(Arc::new(backend.new_bus().await))
        .build()
        .unwrap()
}

async fn next_offset(client: &mut realtime_core::Client) -> u64 {
    match tokio::time::timeout(DEADLINE, client.recv()).await {
        Ok(Some(Message::Event(event))) => event.id.offset,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_b_resumes_from_an_id_issued_by_a() {
    let backend = RedisBackend::connect().await;
    let (a, b) = (instance(&backend).await, instance(&backend).await);
    let mut on_a = a
        .subscribe(SubscribeRequest::channel("orders"))
        .await
        .unwrap()
        .client;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            a.publish(PublishRequest::new("orders", format!("{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let mut last_seen = None;
    for expected in &ids[..2] {
        let offset = next_offset(&mut on_a).await;
        assert_eq!(offset, expected.offset);
        last_seen = Some(*expected);
    }
    drop(on_a);
    for i in 5..8 {
        ids.push(
            a.publish(PublishRequest::new("orders", format!("{i}")))
                .await
                .unwrap()
                .id,
        );
    }
    let token = last_seen.unwrap().to_token();
    let request = SubscribeRequest {
        channels: vec![ChannelRequest::resume("orders", token)],
        ..Default::default()
    };
    let sub = b.subscribe(request).await.unwrap();
    assert!(sub.replay[0].gap.is_none());
    let replayed: Vec<_> = sub.replay[0].events.iter().map(|e| e.id).collect();
    assert_eq!(
        replayed,
        ids[2..].to_vec(),
        "exactly the missed events, from the other instance"
    );
}

#[tokio::test]
async fn keys_share_a_slot_trim_exactly_and_expire() {
    let backend = RedisBackend::connect().await;
    let manager = Manager::builder()
        .store(backend.store.clone())
        .build()
        .unwrap();
    for i in 0..(common::MAX_EVENTS + 7) {
        manager
            .publish(PublishRequest::new("layout", i.to_string()))
            .await
            .unwrap();
    }
    let (meta, stream) = backend.store.keys("layout");
    assert_eq!(meta, format!("{}{{layout}}:m", backend.prefix));
    assert_eq!(stream, format!("{}{{layout}}:s", backend.prefix));
    let mut admin = admin().await;
    let len: usize = redis::cmd("XLEN")
        .arg(&stream)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(len, common::MAX_EVENTS);
    for key in [&meta, &stream] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 600_000, "{key} has TTL {ttl}");
    }
}

#[tokio::test]
async fn the_append_script_publishes_to_a_bus_on_the_same_server() {
    use realtime_core::{Bus, BusMessage, InMemoryBus, NewEvent, Store};
    let backend = RedisBackend::connect().await;
    let bus = backend.new_bus().await;
    assert!(backend.store.publishes_to(&bus));
    assert!(
        !backend.store.publishes_to(&InMemoryBus::new()),
        "another backend's bus"
    );
    let listener = backend.new_bus().await;
    let mut subscription = listener.subscribe("one-trip").await.unwrap();
    let mut event = NewEvent::new("one-trip", "multi\nline");
    event.tenant = Some("t".into());
    event.event_type = Some("kind".into());
    let stored = backend.store.append_and_publish(event, &bus).await.unwrap();
    match tokio::time::timeout(DEADLINE, subscription.recv()).await {
        Ok(Some(BusMessage::Event(received, origin))) => {
            assert_eq!((received, origin), (stored, Origin::UNKNOWN));
        }
        other => panic!("expected the event, got {other:?}"),
    }
    // The default path (append, then PUBLISH) produces the same message.
    let plain = backend
        .store
        .append(NewEvent::new("one-trip", "plain"))
        .await
        .unwrap();
    bus.publish(&plain, Origin(7)).await.unwrap();
    match tokio::time::timeout(DEADLINE, subscription.recv()).await {
        Ok(Some(BusMessage::Event(received, origin))) => {
            assert_eq!((received, origin), (plain, Origin(7)));
        }
        other => panic!("expected the event, got {other:?}"),
    }
}
