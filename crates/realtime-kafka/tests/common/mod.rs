//! The local Kafka-protocol broker for the tests: a topic per backend value.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use realtime_conformance::BusOnly;
use realtime_kafka::{KafkaBus, KafkaBusConfig};

/// Where the tests expect the broker; `REALTIME_KAFKA_BROKERS` overrides it.
pub fn brokers() -> String {
    std::env::var("REALTIME_KAFKA_BROKERS")
        .unwrap_or_else(|_| realtime_kafka::DEFAULT_BROKERS.into())
}

pub const MAX_EVENTS: usize = 50;

/// The test settings on `topic`: three partitions.
pub fn config(topic: &str) -> KafkaBusConfig {
    let mut config = KafkaBusConfig::new(brokers());
    config.topic = topic.to_owned();
    config.partitions = 3;
    config
}

/// Buses on a topic no other test uses.
pub fn buses() -> BusOnly {
    let topic = format!("rt-test-{:016x}", realtime_core::Epoch::fresh().0);
    BusOnly::new(MAX_EVENTS, move || {
        let config = config(&topic);
        async move {
            KafkaBus::connect(config).await.map_err(|error| {
                panic!(
                    "these tests need a Kafka-protocol broker at {} (`cargo xtask services` \
                     starts tansu there): {error}",
                    brokers()
                )
            })
        }
    })
}

pub mod broker;
pub mod tls;
