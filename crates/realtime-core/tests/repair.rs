//! Live repair: a repair ends once its hole is closed (on a single-threaded runtime one that
//! never yields would hang it), and the store, not a late bus copy, starts a channel.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FlakyBus, publisher_and_receiver};
use realtime_core::{
    InMemoryBus, Manager, ManagerConfig, Message, PublishRequest, SubscribeRequest,
};

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
            let (publisher, receiver) =
                publisher_and_receiver(|bus| FlakyBus::losing(bus, 1..2), ManagerConfig::default());
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

/// A hub with no history yet does not take a stale "first event" from the bus (a late copy
/// from a history that is gone) as the start of the channel: the store decides, and the
/// channel's real first event is the first thing its clients receive.
#[tokio::test]
async fn a_stale_first_event_from_the_bus_is_not_adopted() {
    use realtime_core::{Bus, Epoch, NewEvent, Position};
    let broker = InMemoryBus::new();
    let other_instance = broker.connect();
    let manager = Manager::builder().bus(Arc::new(broker)).build().unwrap();
    let mut client = manager
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    let mut stale = NewEvent::new("c", "from a lost history");
    stale.timestamp = std::time::SystemTime::now() - Duration::from_secs(3_600);
    other_instance
        .publish(
            &stale.into_event(Position::new(Epoch(77), 1)),
            realtime_core::Origin::UNKNOWN,
        )
        .await
        .unwrap();
    // Without the check the stale copy would arrive within microseconds.
    let early = tokio::time::timeout(Duration::from_millis(300), client.recv()).await;
    assert!(
        early.is_err(),
        "a stale first event was delivered: {early:?}"
    );
    let real = manager
        .publish(PublishRequest::new("c", "first"))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), client.recv()).await {
        Ok(Some(Message::Event(event))) => assert_eq!(event.id, real.id, "{event:?}"),
        other => panic!("{other:?}"),
    }
}
