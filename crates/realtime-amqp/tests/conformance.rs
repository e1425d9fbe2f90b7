//! The conformance suite against the RabbitMQ broker on 127.0.0.1:5672 (`REALTIME_AMQP_URL`), in
//! both history modes: a shared Redis store with the AMQP bus, and per-instance stores on
//! the AMQP bus.

mod common;

mod shared {
    use super::common;
    realtime_conformance::conformance_tests!(common::AmqpBackend::connect().await);
}

mod per_instance {
    use super::common;
    realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
        common::AmqpBackend::connect().await
    ));
}
