//! Kafka as the bus between two instances, against the broker on 127.0.0.1:9092
//! (`REALTIME_KAFKA_BROKERS`; `cargo xtask bench` starts tansu there): publish → deliver
//! latency (p50/p99, one event at a time, publisher on one instance, subscriber on the other)
//! and publishes/s with 1 and 64 concurrent publishers, per history mode. Lines in
//! criterion's result format, so `cargo xtask bench` collects them.
//!
//! Producer settings: idempotent, `acks=all`, `linger.ms=1`, `message.timeout.ms` = the
//! send timeout (5 s); consumer `fetch.wait.max.ms` 100 ms (the default) and 10 ms.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use realtime_conformance::measure::{self, Amount};
use realtime_core::{History, Manager, ManagerConfig};
use realtime_kafka::{KafkaBus, KafkaBusConfig};
use realtime_redis::{RedisStore, RedisStoreConfig};

fn brokers() -> String {
    std::env::var("REALTIME_KAFKA_BROKERS")
        .unwrap_or_else(|_| realtime_kafka::DEFAULT_BROKERS.into())
}

async fn instance(topic: &str, history: History, prefix: &str, fetch_wait: Duration) -> Manager {
    let mut config = KafkaBusConfig::new(brokers());
    config.topic = topic.to_owned();
    config.fetch_wait = fetch_wait;
    let bus = KafkaBus::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the Kafka bench needs a broker at {}: {e}", brokers()));
    let mut manager = ManagerConfig::default();
    manager.history = history;
    manager.client_buffer = 65_536;
    let mut builder = Manager::builder().config(manager).bus(Arc::new(bus));
    if history == History::Shared {
        let mut store = RedisStoreConfig::default();
        store.prefix = prefix.to_owned();
        builder = builder.store(Arc::new(RedisStore::connect(store).await.unwrap()));
    }
    builder.build().unwrap()
}

async fn measure(history: History, fetch_wait: Duration, label: &str, amount: Amount) {
    let id = realtime_core::Epoch::fresh().0;
    let (topic, prefix) = (
        format!("rt-bench-{id:016x}"),
        format!("rt-bench:{id:016x}:"),
    );
    let a = Arc::new(instance(&topic, history, &prefix, fetch_wait).await);
    let b = instance(&topic, history, &prefix, fetch_wait).await;
    let name = format!("kafka/{label}");
    measure::publish_to_deliver(&name, &a, &b, amount).await;
    for publishers in [1, 64] {
        measure::publish_rate(&name, &a, publishers, amount).await;
    }
}

fn main() {
    let amount = Amount::from_args(1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (default, short) = (Duration::from_millis(100), Duration::from_millis(10));
        measure(History::PerInstance, default, "per_instance", amount).await;
        measure(History::Shared, default, "shared_redis_store", amount).await;
        // tansu holds a fetch for the whole wait even when data arrives (Kafka does not):
        // the same with a 10 ms wait shows the latency of the bus itself.
        measure(
            History::PerInstance,
            short,
            "per_instance_fetch_wait_10ms",
            amount,
        )
        .await;
    });
}
