//! The conformance suite against the NATS server on its local address (`REALTIME_NATS_URL`),
//! in both history modes: a shared Redis store with the NATS bus, and per-instance stores
//! on the NATS bus.

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
