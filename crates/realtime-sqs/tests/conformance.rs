//! The conformance suite against the SQS endpoint on 127.0.0.1:4566 (moto;
//! `REALTIME_SQS_ENDPOINT`), in both history modes: a shared Redis store with the SQS bus, and
//! per-instance stores on the SQS bus.

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
