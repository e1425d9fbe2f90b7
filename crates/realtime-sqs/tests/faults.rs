//! The SQS endpoint going away under a running deployment: two instances on a moto server of
//! the test's own (in memory: it comes back empty, every queue gone), the endpoint killed
//! mid-stream and started again — `realtime_conformance::restart::bus_restart`. Each scenario
//! prints a `fault-row:` line for `cargo xtask faults`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::endpoint::own_endpoint;
use realtime_conformance::restart::{Instance, OwnServer, bus_outage};
use realtime_core::History;
use realtime_sqs::SqsBus;

async fn instance(endpoint: &OwnServer, history: History, prefix: &str) -> Instance {
    let url = format!("http://127.0.0.1:{}", endpoint.port);
    let mut config = common::config(&url, "rt-fault-");
    config.operation_timeout = Duration::from_secs(1);
    let bus = Arc::new(SqsBus::connect(config).await.unwrap());
    let store: Option<Arc<dyn realtime_core::Store>> = match history {
        History::Shared => Some(realtime_redis::conformance::store_at(prefix, 50).await),
        _ => None,
    };
    Instance::watching(bus, store, SqsBus::is_connected, SqsBus::reconnects)
}

async fn scenario(history: History, length: Duration, label: &str) {
    let mut endpoint = own_endpoint();
    let prefix = format!("rt-sqs-fault:{:016x}:", realtime_core::Epoch::fresh().0);
    let a = instance(&endpoint, history, &prefix).await;
    let b = instance(&endpoint, history, &prefix).await;
    let counts = bus_outage(&mut endpoint, &a, &b, length).await;
    println!("{}", counts.row(label));
}

/// Shared Redis store, SQS bus: every stored event reaches every subscriber on the other
/// instance exactly once (what the bus lost is read back from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_endpoint_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(3),
        "sqs endpoint (moto) killed 3 s, restarted empty; shared Redis store",
    )
    .await;
}

/// History per instance on the SQS bus: what the endpoint lost is an explicit gap, and what
/// is published after the restart arrives through the bus, which is live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_endpoint_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(3),
        "sqs endpoint (moto) killed 3 s, restarted empty; history per instance",
    )
    .await;
}

/// The same with the broker away for a minute: longer than any reconnect attempt lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_minute_long_endpoint_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(60),
        "sqs endpoint (moto) killed 60 s, restarted empty; shared Redis store",
    )
    .await;
}

/// The same with the broker away for a minute: longer than any reconnect attempt lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_minute_long_endpoint_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(60),
        "sqs endpoint (moto) killed 60 s, restarted empty; history per instance",
    )
    .await;
}
