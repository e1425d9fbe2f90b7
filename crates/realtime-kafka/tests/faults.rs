//! The Kafka broker going away under a running deployment: two instances on a tansu broker
//! of the test's own (in memory: it comes back empty), the broker killed mid-stream and
//! started again — `realtime_conformance::restart::bus_restart`. Each scenario prints a
//! `fault-row:` line for `cargo xtask faults`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::broker::own_broker;
use realtime_conformance::restart::{Instance, OwnServer, bus_outage};
use realtime_core::History;
use realtime_kafka::{KafkaBus, KafkaBusConfig};

async fn instance(broker: &OwnServer, history: History, prefix: &str) -> Instance {
    // A bus that notices an outage and gives up on a publish within a second.
    let mut config = KafkaBusConfig::new(format!("127.0.0.1:{}", broker.port));
    config.partitions = 3;
    config.send_timeout = Duration::from_secs(1);
    config.operation_timeout = Duration::from_secs(1);
    config.health_interval = Duration::from_millis(250);
    let bus = Arc::new(KafkaBus::connect(config).await.unwrap());
    let store: Option<Arc<dyn realtime_core::Store>> = match history {
        History::Shared => Some(realtime_redis::conformance::store_at(prefix, 50).await),
        _ => None,
    };
    Instance::watching(bus, store, KafkaBus::is_connected, KafkaBus::reconnects)
}

async fn scenario(history: History, length: Duration, label: &str) {
    let mut broker = own_broker();
    let prefix = format!("rt-kafka-fault:{:016x}:", realtime_core::Epoch::fresh().0);
    let a = instance(&broker, history, &prefix).await;
    let b = instance(&broker, history, &prefix).await;
    let counts = bus_outage(&mut broker, &a, &b, length).await;
    println!("{}", counts.row(label));
}

/// Shared Redis store, Kafka bus: every stored event reaches every subscriber on the other
/// instance exactly once (what the bus lost is read back from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_broker_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(3),
        "kafka broker killed 3 s, restarted empty; shared Redis store",
    )
    .await;
}

/// History per instance on the Kafka bus: what the broker lost is an explicit gap, and what
/// is published after the restart arrives through the bus, which is live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_broker_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(3),
        "kafka broker killed 3 s, restarted empty; history per instance",
    )
    .await;
}

/// The same with the broker away for a minute: longer than any reconnect attempt lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_minute_long_broker_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(60),
        "kafka broker killed 60 s, restarted empty; shared Redis store",
    )
    .await;
}

/// The same with the broker away for a minute: longer than any reconnect attempt lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_minute_long_broker_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(60),
        "kafka broker killed 60 s, restarted empty; history per instance",
    )
    .await;
}
