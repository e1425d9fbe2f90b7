//! The conformance suite against the Redis on 127.0.0.1:6379 (`REALTIME_REDIS_URL`).

mod common;

realtime_conformance::conformance_tests!(common::RedisBackend::connect().await);
