//! Redis going away under a running deployment: two instances on a Redis server of the
//! test's own, publisher on one, subscribers on the other, the server killed and restarted.
//! Each test prints a `fault-row:` line that `cargo xtask faults` collects into its table;
//! the scenarios are in `outages.rs`, `history.rs`, `instances.rs` and `per_instance.rs`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

#[path = "../common/mod.rs"]
mod common;
mod failover;
mod history;
mod instances;
mod outages;
mod per_instance;

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

/// A bus that notices an outage within a second and retries every two at most.
async fn connect_bus(url: &str) -> Arc<RedisBus> {
    let mut bus = RedisBusConfig::default();
    bus.url = url.into();
    bus.operation_timeout = Duration::from_secs(1);
    bus.health_interval = Duration::from_millis(250);
    bus.max_reconnect_backoff = Duration::from_secs(2);
    Arc::new(RedisBus::connect(bus).await.unwrap())
}

async fn instance_with(url: &str, detect_restarts: bool) -> Instance {
    let mut store = RedisStoreConfig::default();
    store.url = url.into();
    store.detect_restarts = detect_restarts;
    store.operation_timeout = Duration::from_secs(1);
    let bus = connect_bus(url).await;
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
    let back = Instant::now();
    wait_until("the bus reports the connection back", || {
        receiver.bus.is_connected()
    })
    .await;
    assert!(receiver.bus.reconnects() >= 1);
    let readiness = receiver.manager.ready().await;
    assert!(readiness.is_ready(), "ready again: {readiness:?}");
    eprintln!(
        "after a {outage:?} outage: ready again {:?} after the restart",
        back.elapsed()
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
