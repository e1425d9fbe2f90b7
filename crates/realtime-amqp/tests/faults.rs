//! The RabbitMQ broker going away under a running deployment: two instances on a RabbitMQ
//! node of the test's own (the machine's `rabbitmq-server`, its own node name, ports and
//! data directory, wiped at each start: it comes back empty), killed mid-stream and started
//! again — `realtime_conformance::restart::bus_restart`. The machine's broker is never
//! touched. Each scenario prints a `fault-row:` line for `cargo xtask faults`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use realtime_amqp::AmqpBus;
use realtime_conformance::restart::{Instance, OwnServer, bus_outage};
use realtime_core::History;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A RabbitMQ node of the test's own on a free port, without plugins.
fn own_broker() -> OwnServer {
    let distribution = free_port();
    OwnServer::start(move |port| {
        let base = std::env::temp_dir().join(format!("realtime-amqp-fault-{port}"));
        // Empty at every start, as a broker that lost its disk.
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let plugins = base.join("enabled_plugins");
        std::fs::write(&plugins, "[].").unwrap();
        // The server script itself: Debian's `rabbitmq-server` wrapper switches to the
        // rabbitmq user through `su`, which drops this node's environment.
        let script = std::path::Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        let program = if script.exists() {
            script.as_os_str()
        } else {
            std::ffi::OsStr::new("rabbitmq-server")
        };
        let mut command = std::process::Command::new(program);
        command
            .current_dir(&base)
            .env(
                "RABBITMQ_NODENAME",
                format!("realtime-fault-{port}@localhost"),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", distribution.to_string())
            .env("RABBITMQ_MNESIA_BASE", base.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", base.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", &plugins)
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", base.join("plugins"))
            .env("RABBITMQ_CONFIG_FILE", base.join("rabbitmq"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                base.join("advanced.config"),
            )
            .env("RABBITMQ_PID_FILE", base.join("pid"));
        command
    })
}

async fn instance(broker: &OwnServer, history: History, prefix: &str) -> Instance {
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", broker.port);
    let bus = Arc::new(
        AmqpBus::connect(common::config(&url, "rt-fault"))
            .await
            .unwrap(),
    );
    let store: Option<Arc<dyn realtime_core::Store>> = match history {
        History::Shared => Some(realtime_redis::conformance::store_at(prefix, 50).await),
        _ => None,
    };
    Instance::watching(bus, store, AmqpBus::is_connected, AmqpBus::reconnects)
}

/// One RabbitMQ node of a test's own at a time: two starting at once on a small machine
/// may outlast the start deadline.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn scenario(history: History, length: Duration, label: &str) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut broker = own_broker();
    let prefix = format!("rt-amqp-fault:{:016x}:", realtime_core::Epoch::fresh().0);
    let a = instance(&broker, history, &prefix).await;
    let b = instance(&broker, history, &prefix).await;
    let counts = bus_outage(&mut broker, &a, &b, length).await;
    println!("{}", counts.row(label));
}

/// Shared Redis store, AMQP bus: every stored event reaches every subscriber on the other
/// instance exactly once (what the bus lost is read back from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_broker_restart_with_a_shared_store_loses_nothing() {
    scenario(
        History::Shared,
        Duration::from_secs(3),
        "rabbitmq broker killed 3 s, restarted empty; shared Redis store",
    )
    .await;
}

/// History per instance on the AMQP bus: what the broker lost is an explicit gap, and what
/// is published after the restart arrives through the bus, which is live again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_broker_restart_with_history_per_instance_is_a_gap() {
    scenario(
        History::PerInstance,
        Duration::from_secs(3),
        "rabbitmq broker killed 3 s, restarted empty; history per instance",
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
        "rabbitmq broker killed 60 s, restarted empty; shared Redis store",
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
        "rabbitmq broker killed 60 s, restarted empty; history per instance",
    )
    .await;
}
