//! The conformance suite against the Kafka-protocol broker on 127.0.0.1:9092
//! (`REALTIME_KAFKA_BROKERS`), in both history modes: a shared Redis store with the Kafka
//! bus, and per-instance stores on the Kafka bus.

mod common;

mod shared {
    use super::common;
    realtime_conformance::conformance_tests!(realtime_conformance::WithStore::new(
        realtime_redis::conformance::shared_store(common::MAX_EVENTS).await,
        common::buses()
    ));
}

mod per_instance {
    use super::common;
    realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
        common::buses()
    ));
}
