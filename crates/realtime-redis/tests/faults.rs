//! Redis going away under a running deployment: two instances on a Redis server of the
//! test's own, publisher on one, subscribers on the other, the server killed and restarted.
//! Each test prints a `fault-row:` line that `cargo xtask faults` collects into its table.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::server::{OwnRedis, Persistence};
use realtime_conformance::tally::{Counts, Tally};
use realtime_core::{Client, Manager, ManagerConfig, PublishRequest, SubscribeRequest};
use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);
const CHANNEL: &str = "orders";

struct Instance {
    manager: Manager,
    bus: Arc<RedisBus>,
}

async fn instance(url: &str) -> Instance {
    instance_with(url, true).await
}

async fn instance_with(url: &str, detect_restarts: bool) -> Instance {
    let mut store = RedisStoreConfig::default();
    store.url = url.into();
    store.detect_restarts = detect_restarts;
    store.operation_timeout = Duration::from_secs(1);
    let mut bus = RedisBusConfig::default();
    bus.url = url.into();
    bus.operation_timeout = Duration::from_secs(1);
    bus.health_interval = Duration::from_millis(250);
    bus.max_reconnect_backoff = Duration::from_secs(2);
    let bus = Arc::new(RedisBus::connect(bus).await.unwrap());
    let mut config = ManagerConfig::default();
    config.client_buffer = 4_096;
    let manager = Manager::builder()
        .config(config)
        .store(Arc::new(RedisStore::connect(store).await.unwrap()))
        .bus(bus.clone())
        .build()
        .unwrap();
    Instance { manager, bus }
}

/// Subscribers on one instance, each with its tally.
struct Subscribers {
    clients: Vec<(Client, Tally)>,
}

impl Subscribers {
    async fn join(instance: &Instance, n: usize) -> Self {
        let mut clients = Vec::new();
        for _ in 0..n {
            let client = instance
                .manager
                .subscribe(SubscribeRequest::channel(CHANNEL))
                .await
                .unwrap()
                .client;
            clients.push((client, Tally::new()));
        }
        Subscribers { clients }
    }

    fn published(&mut self, position: realtime_core::Position) {
        for (_, tally) in &mut self.clients {
            tally.published(position);
        }
    }

    /// Receives until every tally is settled (each stored event received or covered by a
    /// gap), failing at the deadline.
    async fn settle(&mut self, what: &str) {
        let deadline = Instant::now() + DEADLINE;
        for (client, tally) in &mut self.clients {
            while !tally.is_settled() {
                match tokio::time::timeout_at(deadline, client.recv()).await {
                    Ok(Some(message)) => tally.received(&message),
                    Ok(None) => panic!("{what}: client closed: {:?}", client.close_reason()),
                    Err(_) => panic!("{what}: not settled in {DEADLINE:?}: {}", tally.counts()),
                }
            }
        }
    }

    /// Checks the promise for every subscriber and prints the first one's row.
    fn verdict(&self, scenario: &str) -> Counts {
        let counts: Vec<_> = self.clients.iter().map(|(_, t)| t.counts()).collect();
        for c in &counts {
            assert!(c.is_exact_or_honest(), "{scenario}: {c}");
        }
        println!("{}", counts[0].row(scenario));
        counts[0]
    }
}

/// Publishes `n` events through `instance`, retrying a retryable failure until the deadline
/// (the first publish after an outage may find the connection still reconnecting).
async fn publish(instance: &Instance, subscribers: &mut Subscribers, n: usize) {
    for i in 0..n {
        let deadline = Instant::now() + DEADLINE;
        let stored = loop {
            match instance
                .manager
                .publish(PublishRequest::new(CHANNEL, format!("event {i}")))
                .await
            {
                Ok(event) => break event,
                Err(error) if error.is_retryable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("publish failed: {error}"),
            }
        };
        subscribers.published(stored.id);
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server goes away for `outage`, while the publisher keeps trying; then it comes back.
async fn outage(
    server: &mut OwnRedis,
    publisher: &Instance,
    receiver: &Instance,
    outage: Duration,
) {
    server.kill();
    let started = Instant::now();
    let refused = publisher
        .manager
        .publish(PublishRequest::new(CHANNEL, "during the outage"))
        .await
        .expect_err("a publish while Redis is down fails");
    assert!(refused.is_retryable(), "a retryable error: {refused}");
    wait_until("the bus reports the connection down", || {
        !receiver.bus.is_connected()
    })
    .await;
    let readiness = receiver.manager.ready().await;
    assert!(
        readiness.store.is_err() && readiness.bus.is_err(),
        "readiness reports the outage: {readiness:?}"
    );
    let rest = outage.saturating_sub(started.elapsed());
    // The length of the fault, not a synchronisation.
    tokio::time::sleep(rest).await;
    server.restart();
    wait_until("the bus reports the connection back", || {
        receiver.bus.is_connected()
    })
    .await;
    assert!(receiver.bus.reconnects() >= 1);
    let readiness = receiver.manager.ready().await;
    assert!(readiness.is_ready(), "ready again: {readiness:?}");
}

/// Two instances on a server of the test's own, subscribers on the second: 20 events, the
/// server away for `length`, 20 more; returns the counts, the publishing instance and the
/// subscribers, after checking the promise.
async fn outage_scenario(
    persistence: Persistence,
    detect_restarts: bool,
    length: Duration,
    scenario: &str,
) -> (Counts, Instance, Subscribers, OwnRedis) {
    let mut server = OwnRedis::start(persistence);
    let (a, b) = (
        instance_with(&server.url(), detect_restarts).await,
        instance_with(&server.url(), detect_restarts).await,
    );
    let mut subscribers = Subscribers::join(&b, 3).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("before the outage").await;
    outage(&mut server, &a, &b, length).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("after the restart").await;
    let counts = subscribers.verdict(scenario);
    (counts, a, subscribers, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_long_outage_without_persistence_ends_in_a_gap_and_live_delivery() {
    // Longer than redis-rs's own reconnect attempts last. The history is gone: the events
    // after the restart may be covered by the gap, but delivery must go on live.
    let (counts, a, mut subscribers, _server) = outage_scenario(
        Persistence::None,
        true,
        Duration::from_secs(12),
        "redis killed 12 s, no persistence",
    )
    .await;
    assert!(counts.gaps >= 1, "the lost history is signalled: {counts}");
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_restart_with_persistence_is_signalled_by_default() {
    let (counts, ..) = outage_scenario(
        Persistence::AlwaysFsync,
        true,
        Duration::from_secs(2),
        "redis killed 2 s, AOF always, restart detection on",
    )
    .await;
    assert!(
        counts.gaps >= 1,
        "a restarted server starts a new epoch: {counts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_short_outage_with_persistence_loses_nothing() {
    // Every write is on disk before it is acknowledged, so restarts need not be detected.
    let (counts, ..) = outage_scenario(
        Persistence::AlwaysFsync,
        false,
        Duration::from_secs(2),
        "redis killed 2 s, AOF always, restart detection off",
    )
    .await;
    assert_eq!(
        (counts.delivered, counts.gaps),
        (40, 0),
        "the history survived: every event exactly once, no gap"
    );
}

/// The bus is live, not only repaired: one more event arrives as an event.
async fn publish_one_and_expect(publisher: &Instance, client: &mut Client, tally: &mut Tally) {
    let stored = publisher
        .manager
        .publish(PublishRequest::new(CHANNEL, "live"))
        .await
        .unwrap();
    tally.published(stored.id);
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, client.recv()).await {
            Ok(Some(realtime_core::Message::Event(event))) if event.id == stored.id => return,
            Ok(Some(message)) => tally.received(&message),
            other => panic!("expected the live event, got {other:?}"),
        }
    }
}

/// Redis comes back from an older snapshot: the offsets after it were handed out already,
/// so the next append must start a new epoch, and a client holding an id from the lost part
/// must get a gap — never new events under its old ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_restore_from_an_older_snapshot_never_reuses_an_id() {
    let mut server = OwnRedis::start(Persistence::Snapshot);
    let (a, b) = (instance(&server.url()).await, instance(&server.url()).await);
    let mut subscribers = Subscribers::join(&b, 2).await;
    publish(&a, &mut subscribers, 10).await;
    server.snapshot();
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("before the restore").await;
    let last_seen = a.manager.store().head(CHANNEL).await.unwrap();
    assert_eq!(last_seen.offset, 20);
    outage(&mut server, &a, &b, Duration::from_secs(1)).await;
    let restored = a.manager.store().head(CHANNEL).await.unwrap();
    assert_eq!(restored, realtime_core::Position::new(last_seen.epoch, 10));
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("after the restore").await;
    let counts = subscribers.verdict("redis restored from an older snapshot");
    assert!(counts.gaps >= 1, "{counts}");
    let now = a.manager.store().head(CHANNEL).await.unwrap();
    assert_ne!(now.epoch, last_seen.epoch, "new events carry a new epoch");
    // A client that saw offset 20 of the lost history resumes: a gap, not a silent skip.
    let resumed = b
        .manager
        .subscribe(realtime_core::SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(
                CHANNEL,
                last_seen.to_token(),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    let gap = resumed.replay[0].gap.as_ref().expect("a gap");
    assert_eq!(gap.reason, realtime_core::GapReason::EpochChanged);
    assert_eq!(gap.head, now);
}

/// Eviction takes a channel's meta hash but leaves its stream: resumes get a gap (never the
/// old events under a new epoch), and publishing goes on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_an_evicted_meta_hash_starts_a_new_history() {
    let server = OwnRedis::start(Persistence::None);
    let a = instance(&server.url()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let event = a
            .manager
            .publish(PublishRequest::new(CHANNEL, format!("old {i}")))
            .await
            .unwrap();
        ids.push(event.id);
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let meta = "realtime:{orders}:m";
    let removed: u64 = redis::cmd("DEL")
        .arg(meta)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let resumed = a
        .manager
        .subscribe(realtime_core::SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(
                CHANNEL,
                ids[1].to_token(),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(resumed.replay[0].events.is_empty(), "no old events");
    assert_eq!(
        resumed.replay[0].gap.as_ref().map(|g| g.reason),
        Some(realtime_core::GapReason::EpochChanged)
    );
    let next = a
        .manager
        .publish(PublishRequest::new(CHANNEL, "new"))
        .await
        .expect("publishing goes on after the eviction");
    assert_eq!(next.id.offset, 1);
    assert_ne!(next.id.epoch, ids[0].epoch);
    let read = a
        .manager
        .store()
        .read(CHANNEL, realtime_core::Position::start(next.id.epoch), 100)
        .await
        .unwrap();
    assert_eq!(read.events.len(), 1, "only the new history: {read:?}");
}

/// Subscribers alone create nothing in Redis: no keys for a channel nobody published to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_subscribing_creates_no_keys() {
    let server = OwnRedis::start(Persistence::None);
    let a = instance(&server.url()).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let request = realtime_core::SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(
                format!("quiet-{i}"),
                "abc-3",
            )],
            ..Default::default()
        };
        clients.push(a.manager.subscribe(request).await.unwrap());
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut admin).await.unwrap();
    assert_eq!(keys, 0, "subscribing and resuming wrote keys");
    // A subscriber of a channel without history receives its first event.
    let first = a
        .manager
        .publish(PublishRequest::new("quiet-0", "first"))
        .await
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, clients[0].client.recv()).await {
            Ok(Some(realtime_core::Message::Event(event))) => {
                assert_eq!(event.id, first.id);
                break;
            }
            Ok(Some(_)) => continue,
            other => panic!("expected the first event, got {other:?}"),
        }
    }
}

/// Every pub/sub connection is killed three times mid-stream (`CLIENT KILL TYPE pubsub`):
/// every event arrives once, in order, and the bus is live again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_killed_pubsub_connections_lose_nothing() {
    let server = OwnRedis::start(Persistence::None);
    let (a, b) = (instance(&server.url()).await, instance(&server.url()).await);
    let mut subscribers = Subscribers::join(&b, 4).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let mut killed = 0u64;
    for round in 0..3 {
        publish(&a, &mut subscribers, 50).await;
        killed += redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async::<u64>(&mut admin)
            .await
            .unwrap();
        assert!(
            killed > round,
            "the fault must hit the subscriber connection"
        );
        publish(&a, &mut subscribers, 50).await;
    }
    subscribers.settle("after the kills").await;
    let counts = subscribers.verdict("pub/sub connections killed 3 times");
    assert_eq!((counts.delivered, counts.gaps), (300, 0), "{counts}");
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

/// An instance goes away while events are published on a third one: its clients reconnect
/// to another instance with their last ids and end with every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_clients_of_a_lost_instance_resume_on_another() {
    let server = OwnRedis::start(Persistence::None);
    let url = server.url();
    let (a, b, publisher) = (
        instance(&url).await,
        instance(&url).await,
        instance(&url).await,
    );
    let mut subscribers = Subscribers::join(&a, 4).await;
    let total = 300usize;
    let publishing = {
        let manager = publisher.manager.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..total {
                let event = manager
                    .publish(PublishRequest::new(CHANNEL, format!("{i}")))
                    .await
                    .unwrap();
                ids.push(event.id);
                if i % 20 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            ids
        })
    };
    // Each client reads a little, then its instance goes away.
    let mut last = Vec::new();
    for (client, tally) in &mut subscribers.clients {
        let mut seen = None;
        for _ in 0..5 {
            match tokio::time::timeout(DEADLINE, client.recv()).await {
                Ok(Some(message)) => {
                    if let realtime_core::Message::Event(event) = &message {
                        seen = Some(event.id);
                    }
                    tally.received(&message);
                }
                other => panic!("expected events before the loss: {other:?}"),
            }
        }
        last.push(seen);
    }
    a.manager.close().await.unwrap();
    for ((client, tally), seen) in subscribers.clients.iter_mut().zip(&mut last) {
        // Whatever was still queued arrives, then the stream ends.
        while let Some(message) = client.recv().await {
            if let realtime_core::Message::Event(event) = &message {
                *seen = Some(event.id);
            }
            tally.received(&message);
        }
        let token = seen.map(|p| p.to_token()).unwrap_or_default();
        let request = SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(CHANNEL, token)],
            ..Default::default()
        };
        let sub = b.manager.subscribe(request).await.unwrap();
        for replay in &sub.replay {
            if let Some(gap) = &replay.gap {
                tally.received(&realtime_core::Message::Gap(gap.clone()));
            }
            for event in &replay.events {
                tally.received(&realtime_core::Message::Event(event.clone()));
            }
        }
        *client = sub.client;
    }
    for id in publishing.await.unwrap() {
        subscribers.published(id);
    }
    subscribers.settle("after failing over").await;
    let counts = subscribers.verdict("instance lost mid-stream, clients resume on another");
    assert_eq!(
        (counts.delivered, counts.gaps),
        (total as u64, 0),
        "{counts}"
    );
}
