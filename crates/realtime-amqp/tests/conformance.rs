//! The conformance suite against the RabbitMQ server on its local address (`REALTIME_AMQP_URL`),
//! in both history modes: a shared Redis store with the RabbitMQ bus, and per-instance stores
//! on the RabbitMQ bus.

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
