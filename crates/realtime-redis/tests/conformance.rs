//! The conformance suite against the Redis on 127.0.0.1:6379 (`REALTIME_REDIS_URL`), in
//! both history modes: a shared Redis store, and per-instance stores on the Redis bus.

mod common;

mod shared {
    use super::common;
    realtime_conformance::conformance_tests!(common::RedisBackend::connect().await);
}

mod per_instance {
    use super::common;
    realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
        common::RedisBackend::connect().await
    ));
}
