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
use realtime_core::{History, Manager};
use realtime_kafka::{KafkaBus, KafkaBusConfig};
use realtime_redis::RedisStoreConfig;

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
    let store: Option<Arc<dyn realtime_core::Store>> = match history {
        History::Shared => {
            let keep = RedisStoreConfig::default().max_events_per_channel;
            Some(realtime_redis::conformance::store_at(prefix, keep).await)
        }
        _ => None,
    };
    measure::manager_on(Arc::new(bus), store)
}

async fn measure(history: History, fetch_wait: Duration, label: &str, amount: Amount) {
    let id = realtime_core::Epoch::fresh().0;
    let (topic, prefix) = (
        format!("rt-bench-{id:016x}"),
        format!("rt-bench:{id:016x}:"),
    );
    let a = Arc::new(instance(&topic, history, &prefix, fetch_wait).await);
    let b = instance(&topic, history, &prefix, fetch_wait).await;
    measure::pair(&format!("kafka/{label}"), &a, &b, &[1, 64], amount).await;
}

fn main() {
    measure::run(1_000, |amount| async move {
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
