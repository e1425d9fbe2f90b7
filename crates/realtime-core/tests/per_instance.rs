//! Per-instance history: two instances, each with its own in-memory store, on one bus.
//! Every event reaches every instance once; resumes are exact on the instance that issued
//! the position and an explicit gap anywhere else; what the bus loses is a `lost` gap.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use realtime_core::{
    Bus, BusMessage, BusSender, BusSubscription, ChannelRequest, Client, Epoch, Error, Event,
    GapReason, History, InMemoryBus, InMemoryStore, Manager, ManagerConfig, Message, NewEvent,
    Origin, Position, PublishRequest, Reach, Result, SubscribeRequest,
};

const DEADLINE: Duration = Duration::from_secs(10);

fn per_instance(bus: Arc<dyn Bus>, linger: Duration) -> Manager {
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

async fn next(client: &mut Client) -> Message {
    tokio::time::timeout(DEADLINE, client.recv())
        .await
        .expect("a message within the deadline")
        .expect("the client is open")
}

async fn next_event(client: &mut Client) -> Event {
    match next(client).await {
        Message::Event(event) => event.event().clone(),
        other => panic!("expected an event, got {other:?}"),
    }
}

fn text(event: &Event) -> String {
    String::from_utf8_lossy(&event.data).into_owned()
}

fn resume(channel: &str, position: Position) -> SubscribeRequest {
    SubscribeRequest {
        channels: vec![ChannelRequest::resume(channel, position.to_token())],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_other_instance_once_and_resumes_exactly_there_only() {
    let broker = InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let mut client = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    // B listens too, so its history of the channel holds A's events (under B's positions).
    let _on_b = b.subscribe(SubscribeRequest::channel("c")).await.unwrap();
    for i in 0..20 {
        let via = if i % 2 == 0 { &a } else { &b };
        via.publish(PublishRequest::new("c", format!("{i}")))
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    for _ in 0..20 {
        received.push(next_event(&mut client).await);
    }
    let marker = b.publish(PublishRequest::new("c", "marker")).await.unwrap();
    let last = next_event(&mut client).await;
    assert_eq!(text(&last), "marker", "no copy arrives before the marker");
    // Each instance's events in its own order, each once; positions are A's, contiguous.
    let texts: Vec<String> = received.iter().map(text).collect();
    for parity in 0..2 {
        let of_one: Vec<&String> = texts
            .iter()
            .filter(|t| t.parse::<usize>().unwrap() % 2 == parity)
            .collect();
        let expected: Vec<String> = (0..20)
            .filter(|i| i % 2 == parity)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(of_one, expected.iter().collect::<Vec<_>>());
    }
    let epoch = received[0].id.epoch;
    assert_eq!(
        received.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=20)
            .map(|o| Position::new(epoch, o))
            .collect::<Vec<_>>(),
        "delivered under A's own positions"
    );
    assert_ne!(marker.id.epoch, epoch, "B's positions are B's own");
    // Exact on A from a position A issued.
    let sub = a.subscribe(resume("c", received[9].id)).await.unwrap();
    let replayed: Vec<String> = sub.replay[0]
        .events
        .iter()
        .map(|e| text(e.event()))
        .collect();
    let mut expected: Vec<String> = texts[10..].to_vec();
    expected.push("marker".into());
    assert_eq!(replayed, expected);
    assert!(sub.replay[0].gap.is_none());
    // On B, A's position means nothing: an explicit gap with B's head.
    let sub = b.subscribe(resume("c", received[9].id)).await.unwrap();
    let gap = sub.replay[0]
        .gap
        .as_ref()
        .expect("a gap on the other instance");
    assert_eq!(
        (gap.reason, gap.head.epoch),
        (GapReason::EpochChanged, marker.id.epoch)
    );
    assert!(sub.replay[0].events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_within_the_linger_resumes_exactly_and_after_it_gets_a_gap() {
    let broker = InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(1));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let mut client = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    b.publish(PublishRequest::new("c", "1")).await.unwrap();
    let seen = next_event(&mut client).await;
    drop(client);
    // A still listens: what B publishes now is recorded on A.
    b.publish(PublishRequest::new("c", "2")).await.unwrap();
    b.publish(PublishRequest::new("c", "3")).await.unwrap();
    let sub = poll_until_replay(&a, seen.id, 2).await;
    let replayed: Vec<String> = sub.replay[0]
        .events
        .iter()
        .map(|e| text(e.event()))
        .collect();
    assert_eq!(replayed, ["2", "3"]);
    let last = sub.replay[0].events[1].id;
    drop(sub);
    // The linger ends: A stops listening, and what B publishes then never reaches A's store.
    poll("the channel released after the linger", || {
        a.channel_count() == 0
    })
    .await;
    b.publish(PublishRequest::new("c", "4")).await.unwrap();
    let sub = a.subscribe(resume("c", last)).await.unwrap();
    let gap = sub.replay[0]
        .gap
        .as_ref()
        .expect("a resume across a break is a gap");
    assert_eq!(gap.reason, GapReason::EpochChanged);
    assert!(sub.replay[0].events.is_empty());
}

/// Subscribes with `from` until the replay holds `n` events (B's events reach A's store
/// through the bus, asynchronously).
async fn poll_until_replay(
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

async fn poll(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

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

/// Two instances both publishing to a channel both listen to: each records the other's
/// events, and that must not read as a hole in the other's sequence. (Numbered by the store,
/// the bus copies skipped the offsets of re-recorded events, and every interleaving turned
/// into a `lost` gap once the hole had been awaited.)
#[tokio::test(start_paused = true)]
async fn two_publishers_on_a_channel_open_no_hole() {
    let broker = InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let mut on_a = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    let mut on_b = b
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    for i in 0..20 {
        let via = if i % 2 == 0 { &a } else { &b };
        via.publish(PublishRequest::new("c", format!("{i}")))
            .await
            .unwrap();
        // Each instance records the event before the next is published, so their stores
        // interleave both instances' events.
        for client in [&mut on_a, &mut on_b] {
            assert_eq!(text(&next_event(client).await), i.to_string());
        }
    }
    // Past the patience for holes (the clock is paused: this advances it, nothing waits).
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.publish(PublishRequest::new("c", "marker")).await.unwrap();
    for client in [&mut on_a, &mut on_b] {
        assert_eq!(
            text(&next_event(client).await),
            "marker",
            "no gap before it"
        );
    }
}
