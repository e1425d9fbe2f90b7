//! Per-instance history when the bus loses events, and the combinations the builder refuses.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::per_instance::*;
use parking_lot::Mutex;
use realtime_core::{
    Bus, BusMessage, BusSender, BusSubscription, Epoch, Error, Event, GapReason, History,
    InMemoryStore, Manager, Message, NewEvent, Origin, Position, Reach, Result, SubscribeRequest,
};

/// A bus the test drives by hand: it hands out subscriptions and lets the test push
/// messages into them as another instance (or a failing connection) would.
#[derive(Default)]
struct ScriptedBus {
    senders: Mutex<HashMap<String, BusSender>>,
    reach: Option<Reach>,
}

impl ScriptedBus {
    fn send(&self, channel: &str, message: BusMessage) {
        self.senders.lock()[channel].send(message);
    }
}

#[async_trait]
impl Bus for ScriptedBus {
    async fn publish(&self, _event: &Event, _origin: Origin) -> Result<()> {
        Ok(())
    }
    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        let (sender, subscription) = BusSubscription::channel(64, || {});
        self.senders.lock().insert(channel.to_owned(), sender);
        Ok(subscription)
    }
    fn reach(&self) -> Reach {
        self.reach.unwrap_or(Reach::Process)
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

fn foreign(epoch: u64, offset: u64, data: &str) -> BusMessage {
    BusMessage::Event(
        NewEvent::new("c", data.to_owned()).into_event(Position::new(Epoch(epoch), offset)),
        Origin(0xb),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_bus_loses_is_a_lost_gap_and_a_new_epoch() {
    let bus = Arc::new(ScriptedBus::default());
    let a = per_instance(bus.clone(), Duration::from_secs(60));
    let mut client = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    bus.send("c", foreign(0xfeed, 1, "one"));
    let one = next_event(&mut client).await;
    assert_eq!(text(&one), "one");
    // A copy is not delivered twice; a late event of a concurrent publish is.
    bus.send("c", foreign(0xfeed, 3, "three"));
    bus.send("c", foreign(0xfeed, 3, "three"));
    bus.send("c", foreign(0xfeed, 2, "two"));
    assert_eq!(text(&next_event(&mut client).await), "three");
    assert_eq!(text(&next_event(&mut client).await), "two");
    // Offset 5 opens a hole (4) that nothing fills: after a short wait, a `lost` gap.
    bus.send("c", foreign(0xfeed, 5, "five"));
    assert_eq!(text(&next_event(&mut client).await), "five");
    let started = tokio::time::Instant::now();
    match next(&mut client).await {
        Message::Gap(gap) => {
            assert_eq!(
                (gap.reason, gap.head),
                (GapReason::Lost, Position::start(Epoch::NONE))
            );
        }
        other => panic!("expected a lost gap, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the hole is awaited first"
    );
    // No resume replays across the hole.
    let sub = a.subscribe(resume("c", one.id)).await.unwrap();
    assert_eq!(
        sub.replay[0].gap.as_ref().map(|g| g.reason),
        Some(GapReason::EpochChanged)
    );
    drop(sub);
    // Delivery goes on in a new epoch; an interruption is a `lost` gap too.
    bus.send("c", foreign(0xfeed, 6, "six"));
    let six = next_event(&mut client).await;
    assert_eq!((text(&six), six.id.offset), ("six".to_owned(), 1));
    assert_ne!(six.id.epoch, one.id.epoch);
    bus.send("c", BusMessage::Interrupted);
    match next(&mut client).await {
        Message::Gap(gap) => assert_eq!(gap.reason, GapReason::Lost),
        other => panic!("expected a lost gap, got {other:?}"),
    }
    let sub = a.subscribe(resume("c", six.id)).await.unwrap();
    assert_eq!(
        sub.replay[0].gap.as_ref().map(|g| g.reason),
        Some(GapReason::EpochChanged)
    );
}

/// A store that lives elsewhere (as a shared store would) but keeps its data in memory.
struct NetworkStore(InMemoryStore);

#[async_trait]
impl realtime_core::Store for NetworkStore {
    fn reach(&self) -> Reach {
        Reach::Network
    }
    async fn append(&self, event: NewEvent) -> Result<Event> {
        self.0.append(event).await
    }
    async fn read(
        &self,
        channel: &str,
        after: Position,
        limit: usize,
    ) -> Result<realtime_core::ReadResult> {
        self.0.read(channel, after, limit).await
    }
    async fn head(&self, channel: &str) -> Result<Position> {
        self.0.head(channel).await
    }
    async fn close(&self) -> Result<()> {
        self.0.close().await
    }
}

#[test]
fn the_builder_refuses_what_it_cannot_honour() {
    let network_bus = || {
        Arc::new(ScriptedBus {
            reach: Some(Reach::Network),
            ..Default::default()
        })
    };
    // The silent loss this mode exists for: each instance's own store on a network bus.
    let shared = Manager::builder()
        .store(Arc::new(InMemoryStore::new()))
        .bus(network_bus())
        .build();
    assert!(
        matches!(
            shared,
            Err(Error::InvalidConfig {
                field: "history",
                ..
            })
        ),
        "{:?}",
        shared.err()
    );
    let mixed = Manager::builder()
        .history(History::PerInstance)
        .store(Arc::new(NetworkStore(InMemoryStore::new())))
        .bus(network_bus())
        .build();
    assert!(matches!(
        mixed,
        Err(Error::InvalidConfig {
            field: "history",
            ..
        })
    ));
    // What it can honour.
    for (history, store) in [
        (
            History::PerInstance,
            Arc::new(InMemoryStore::new()) as Arc<dyn realtime_core::Store>,
        ),
        (
            History::Shared,
            Arc::new(NetworkStore(InMemoryStore::new())),
        ),
    ] {
        Manager::builder()
            .history(history)
            .store(store)
            .bus(network_bus())
            .build()
            .unwrap();
    }
    Manager::builder().build().unwrap();
}
