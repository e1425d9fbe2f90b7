//! The NATS server going away under a running deployment: two instances on a nats-server of
//! the test's own (core NATS keeps nothing: it comes back empty), killed mid-stream and
//! started again — `realtime_conformance::restart::bus_restart`. Each scenario prints a
//! `fault-row:` line for `cargo xtask faults`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use realtime_conformance::restart::{Instance, OwnServer, bus_outage};
use realtime_core::History;
use realtime_nats::NatsBus;

/// A nats-server of the test's own (the machine's binary), on a free port.
fn own_server() -> OwnServer {
    OwnServer::start(|port| {
        let mut command = std::process::Command::new("nats-server");
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        command
    })
}

async fn instance(server: &OwnServer, history: History, prefix: &str) -> Instance {
    let url = format!("nats://127.0.0.1:{}", server.port);
    let bus = Arc::new(
        NatsBus::connect(common::config(&url, "rt-fault."))
            .await
            .unwrap(),
    );
    let store: Option<Arc<dyn realtime_core::Store>> = match history {
        History::Shared => Some(realtime_redis::conformance::store_at(prefix, 50).await),
        _ => None,
    };
    Instance::watching(bus, store, NatsBus::is_connected, NatsBus::reconnects)
}

async fn scenario(history: History, length: Duration, label: &str) {
    let mut server = own_server();
    let prefix = format!("rt-nats-fault:{:016x}:", realtime_core::Epoch::fresh().0);
    let a = instance(&server, history, &prefix).await;
    let b = instance(&server, history, &prefix).await;
    let counts = bus_outage(&mut server, &a, &b, length).await;
    println!("{}", counts.row(label));
}

/// Shared Redis store, NATS bus: every stored event reaches every subscriber on the other
/// instance exactly once (what the bus lost is read back from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_server_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(3),
        "nats server killed 3 s, restarted empty; shared Redis store",
    )
    .await;
}

/// History per instance on the NATS bus: what the server lost is an explicit gap, and what
/// is published after the restart arrives through the bus, which is live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_server_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(3),
        "nats server killed 3 s, restarted empty; history per instance",
    )
    .await;
}

/// The same with the server away for a minute: longer than any reconnect attempt lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_minute_long_server_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(60),
        "nats server killed 60 s, restarted empty; shared Redis store",
    )
    .await;
}

/// The same with the server away for a minute: longer than any reconnect attempt lasts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_minute_long_server_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(60),
        "nats server killed 60 s, restarted empty; history per instance",
    )
    .await;
}
