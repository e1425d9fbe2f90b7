//! The SQS endpoint going away under a running deployment: two instances on a moto server of
//! the test's own (in memory: it comes back empty, every queue gone), publisher on one,
//! subscribers on the other, the endpoint killed mid-stream and started again. Each scenario
//! prints a `fault-row:` line for `cargo xtask faults`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::endpoint::OwnEndpoint;
use realtime_conformance::tally::{Counts, Sequence, Tally};
use realtime_core::frame::Origin;
use realtime_core::{
    Bus, Client, Epoch, History, Manager, ManagerConfig, NewEvent, Position, PublishRequest,
    SubscribeRequest,
};
use realtime_redis::{RedisStore, RedisStoreConfig};
use realtime_sqs::SqsBus;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);
const CHANNEL: &str = "orders";

struct Instance {
    manager: Manager,
    bus: Arc<SqsBus>,
}

/// A bus with the tests' quick discovery and short polls.
async fn connect_bus(endpoint: &OwnEndpoint, prefix: &str) -> Arc<SqsBus> {
    let mut config = common::config(&endpoint.url(), prefix);
    config.operation_timeout = Duration::from_secs(1);
    Arc::new(SqsBus::connect(config).await.unwrap())
}

async fn instance(endpoint: &OwnEndpoint, history: History, prefix: &str) -> Instance {
    let bus = connect_bus(endpoint, "rt-fault-").await;
    let mut config = ManagerConfig::default();
    config.client_buffer = 4_096;
    config.history = history;
    // The outage outlasts the publisher's background retries.
    config.broadcast_retry = Duration::from_millis(500);
    let mut builder = Manager::builder().config(config).bus(bus.clone());
    if history == History::Shared {
        let mut store = RedisStoreConfig::default();
        store.url = common::redis_url();
        store.prefix = prefix.to_owned();
        builder = builder.store(Arc::new(RedisStore::connect(store).await.unwrap()));
    }
    Instance {
        manager: builder.build().unwrap(),
        bus,
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscribers(instance: &Instance, n: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let subscribed = instance
            .manager
            .subscribe(SubscribeRequest::channel(CHANNEL))
            .await
            .unwrap();
        clients.push(subscribed.client);
    }
    clients
}

/// The endpoint killed for 3 s and started again, empty: a publish straight to the bus fails
/// with a retryable error within its timeout, both buses see the outage and the recovery.
async fn outage(endpoint: &mut OwnEndpoint, publisher: &Instance, receiver: &Instance) {
    endpoint.kill();
    let started = Instant::now();
    let refused = publisher
        .bus
        .publish(
            &NewEvent::new(CHANNEL, "straight to the bus").into_event(Position {
                epoch: Epoch(1),
                offset: 1,
            }),
            Origin::fresh(),
        )
        .await
        .expect_err("a publish while the endpoint is down fails");
    assert!(refused.is_retryable(), "a retryable error: {refused}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "within the send timeout, not a hang: {:?}",
        started.elapsed()
    );
    wait_until("the bus reports the endpoint down", || {
        !receiver.bus.is_connected()
    })
    .await;
    // The length of the fault, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(started.elapsed())).await;
    endpoint.restart();
    wait_until("the bus reports the endpoint back", || {
        receiver.bus.is_connected() && publisher.bus.is_connected()
    })
    .await;
    assert!(receiver.bus.reconnects() >= 1);
}

/// Publishes `n` events, retrying a retryable failure until the deadline; their positions.
async fn publish(
    instance: &Instance,
    label: &str,
    n: usize,
) -> Vec<(realtime_core::Position, bytes::Bytes)> {
    let mut published = Vec::new();
    for i in 0..n {
        let data = bytes::Bytes::from(format!("{label} {i}"));
        let deadline = Instant::now() + DEADLINE;
        let stored = loop {
            match instance
                .manager
                .publish(PublishRequest::new(CHANNEL, data.clone()))
                .await
            {
                Ok(event) => break event,
                Err(error) if error.is_retryable() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("publish failed: {error}"),
            }
        };
        published.push((stored.id, data));
    }
    published
}

/// What a subscriber's tally does, for either kind of tally.
trait Counting {
    fn received(&mut self, message: &realtime_core::Message);
    fn is_settled(&self) -> bool;
    fn counts(&self) -> Counts;
}

impl Counting for Tally {
    fn received(&mut self, message: &realtime_core::Message) {
        Tally::received(self, message);
    }
    fn is_settled(&self) -> bool {
        Tally::is_settled(self)
    }
    fn counts(&self) -> Counts {
        Tally::counts(self)
    }
}

impl Counting for Sequence {
    fn received(&mut self, message: &realtime_core::Message) {
        Sequence::received(self, message);
    }
    fn is_settled(&self) -> bool {
        Sequence::is_settled(self)
    }
    fn counts(&self) -> Counts {
        Sequence::counts(self)
    }
}

/// The scenario: two instances in `history` mode, three subscribers on the second, 20 events
/// published on the first and the endpoint killed at once — some still in flight, lost with
/// its in-memory queues — 10 more published during the 3 s outage, the endpoint restarted empty,
/// 20 after; then one more that must arrive as an event (the bus is live). Each subscriber's
/// tally (built by `tally` from what was published) is settled; their counts.
async fn endpoint_restart<T: Counting>(
    history: History,
    tally: impl Fn(&[(realtime_core::Position, bytes::Bytes)]) -> T,
) -> Vec<Counts> {
    let mut endpoint = OwnEndpoint::start();
    let prefix = format!("rt-sqs-fault:{:016x}:", realtime_core::Epoch::fresh().0);
    let a = instance(&endpoint, history, &prefix).await;
    let b = instance(&endpoint, history, &prefix).await;
    let clients = subscribers(&b, 3).await;
    let mut all = publish(&a, "before", 20).await;
    let task_a = &a;
    // Publishing goes on during the outage.
    let (during, ()) = tokio::join!(
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            publish(task_a, "during", 10).await
        },
        outage(&mut endpoint, &a, &b)
    );
    all.extend(during);
    all.extend(publish(&a, "after", 20).await);
    // The bus is live again: one more event reaches every subscriber as an event. Read up
    // to it, so that what arrived before it counts too (a gap early in the queue would
    // otherwise "cover" events still behind it).
    let marker = publish(&a, "live", 1).await;
    let deadline = Instant::now() + DEADLINE;
    let mut counts = Vec::new();
    for mut client in clients {
        let mut tally = tally(&all);
        loop {
            match tokio::time::timeout_at(deadline, client.recv()).await {
                Ok(Some(realtime_core::Message::Event(event)))
                    if event.event().data == marker[0].1 =>
                {
                    break;
                }
                Ok(Some(message)) => tally.received(&message),
                Ok(None) => panic!("client closed: {:?}", client.close_reason()),
                Err(_) => panic!("the live event did not arrive: {}", tally.counts()),
            }
        }
        assert!(tally.is_settled(), "{}", tally.counts());
        counts.push(tally.counts());
    }
    counts
}

/// Shared Redis store, SQS bus: every stored event reaches every subscriber on the other
/// instance exactly once (what the bus lost is read back from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_endpoint_restart_with_a_shared_store_loses_nothing() {
    let counts = endpoint_restart(History::Shared, |all| {
        let mut tally = Tally::new();
        for (position, _) in all {
            tally.published(*position);
        }
        tally
    })
    .await;
    for c in &counts {
        assert!(c.is_exact_or_honest(), "{c}");
        assert_eq!((c.lost, c.gaps), (0, 0), "a shared store repairs all: {c}");
        assert_eq!(c.delivered, 50, "every stored event once: {c}");
    }
    println!(
        "{}",
        counts[0].row("sqs endpoint (moto) killed 3 s, restarted empty; shared Redis store")
    );
}

/// History per instance on the SQS bus: what the endpoint lost cannot be read back from any
/// store, so the other instance's subscribers get every event once or an explicit gap — and
/// what is published after the restart arrives through the bus, which is live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_endpoint_restart_with_history_per_instance_is_a_gap() {
    let counts = endpoint_restart(History::PerInstance, |all| {
        let mut tally = Sequence::new();
        for (_, data) in all {
            tally.published(data.clone());
        }
        tally
    })
    .await;
    for c in &counts {
        assert!(c.is_exact_or_honest(), "{c}");
        assert!(c.gaps >= 1, "what the endpoint lost is signalled: {c}");
    }
    println!(
        "{}",
        counts[0].row("sqs endpoint (moto) killed 3 s, restarted empty; history per instance")
    );
}
