//! The conformance suite against the NATS server on 127.0.0.1:4222 (`REALTIME_NATS_URL`), in
//! both history modes: a shared Redis store with the NATS bus, and per-instance stores on
//! the NATS bus.

mod common;

mod shared {
    use super::common;
    realtime_conformance::conformance_tests!(common::NatsBackend::connect().await);
}

mod per_instance {
    use super::common;
    realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
        common::NatsBackend::connect().await
    ));
}
