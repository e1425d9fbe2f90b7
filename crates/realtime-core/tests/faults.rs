//! The manager when its store or bus misbehaves: a stored event the bus refused still
//! reaches other instances; a subscribe against a store that never answers fails in time; a
//! bus that loses a long run of events is repaired without cutting the clients that read.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{FlakyBus, publisher_and_receiver};
use realtime_core::{
    Error, Event, Manager, ManagerConfig, Message, NewEvent, Position, PublishRequest, ReadResult,
    Result, Store, SubscribeRequest,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_stored_event_the_bus_refused_still_reaches_other_instances() {
    let (publisher, receiver) = publisher_and_receiver(
        |bus| FlakyBus::refusing(bus, 0..3),
        ManagerConfig::default(),
    );
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
    fn reach(&self) -> realtime_core::Reach {
        realtime_core::Reach::Process
    }
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

/// The bus loses 900 events in a row; the next one shows the hole and the manager repairs
/// it from the store — far more events than a client queue holds. A client that reads gets
/// every event once, in order, and is not cut; a client that never reads is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_long_repair_does_not_cut_clients_that_read() {
    let lost = 900;
    let mut config = ManagerConfig::default();
    config.client_buffer = 64;
    let (publisher, receiver) =
        publisher_and_receiver(|bus| FlakyBus::losing(bus, 0..lost), config);
    let subscribe = || receiver.subscribe(SubscribeRequest::channel("orders"));
    let mut reader = subscribe().await.unwrap().client;
    let stalled = subscribe().await.unwrap().client;
    let mut tally = realtime_conformance::tally::Tally::new();
    for i in 0..=lost {
        let event = publisher
            .publish(PublishRequest::new("orders", format!("{i}")))
            .await
            .unwrap();
        tally.published(event.id);
    }
    while !tally.is_settled() {
        match tokio::time::timeout(Duration::from_secs(20), reader.recv()).await {
            Ok(Some(message)) => tally.received(&message),
            other => panic!(
                "the reader was cut or starved: {other:?} ({:?}) after {}",
                reader.close_reason(),
                tally.counts()
            ),
        }
    }
    let counts = tally.counts();
    println!("{}", counts.row("bus lost 900 events; 64-message queues"));
    assert!(counts.is_exact_or_honest(), "{counts}");
    assert_eq!(
        (counts.delivered, counts.gaps),
        (lost as u64 + 1, 0),
        "{counts}"
    );
    assert_eq!(reader.close_reason(), None, "the reader kept up and stays");
    assert_eq!(
        stalled.close_reason(),
        Some(realtime_core::CloseReason::SlowConsumer),
        "the client that never reads is cut"
    );
}

/// `disconnect_all` while events are being published: every client resumes from its last
/// id (as a browser does) and ends with every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_disconnect_all_during_publishing_loses_nothing() {
    use realtime_conformance::tally::Tally;
    let manager = Manager::builder().build().unwrap();
    let total = 600;
    let mut clients = Vec::new();
    for _ in 0..8 {
        let client = manager
            .subscribe(SubscribeRequest::channel("orders"))
            .await
            .unwrap()
            .client;
        clients.push((client, Tally::new(), None::<Position>));
    }
    let publisher = {
        let manager = manager.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..total {
                let event = manager
                    .publish(PublishRequest::new("orders", format!("{i}")))
                    .await
                    .unwrap();
                ids.push(event.id);
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
                if i == total / 2 {
                    manager.disconnect_all();
                }
            }
            ids
        })
    };
    let ids = publisher.await.unwrap();
    for (client, tally, last) in &mut clients {
        for id in &ids {
            tally.published(*id);
        }
        // Read until the stream ends (it was cut), then resume once, like a browser.
        let mut resumed = false;
        while !tally.is_settled() {
            match tokio::time::timeout(Duration::from_secs(10), client.recv()).await {
                Ok(Some(message)) => {
                    if let Message::Event(event) = &message {
                        *last = Some(event.id);
                    }
                    tally.received(&message);
                }
                Ok(None) => {
                    assert!(!resumed, "cut twice");
                    resumed = true;
                    let token = last.map(|p| p.to_token()).unwrap_or_default();
                    let request = SubscribeRequest {
                        channels: vec![realtime_core::ChannelRequest::resume("orders", token)],
                        ..Default::default()
                    };
                    let sub = manager.subscribe(request).await.unwrap();
                    for replay in &sub.replay {
                        if let Some(gap) = &replay.gap {
                            tally.received(&Message::Gap(gap.clone()));
                        }
                        for event in &replay.events {
                            *last = Some(event.id);
                            tally.received(&Message::Event(event.clone()));
                        }
                    }
                    *client = sub.client;
                }
                Err(_) => panic!("stalled: {}", tally.counts()),
            }
        }
        assert!(resumed, "disconnect_all reached the client");
    }
    let counts = clients[0].1.counts();
    println!(
        "{}",
        counts.row("disconnect-all during publishing, clients resume")
    );
    for (_, tally, _) in &clients {
        let c = tally.counts();
        assert!(
            c.is_exact_or_honest() && c.gaps == 0 && c.delivered == total as u64,
            "{c}"
        );
    }
}
