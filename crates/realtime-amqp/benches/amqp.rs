//! RabbitMQ as the bus between two instances, against the broker on 127.0.0.1:5672
//! (`REALTIME_AMQP_URL`): publish → deliver latency (p50/p99, one event at a time, publisher
//! on one instance, subscriber on the other) and publishes/s with 1, 16 and 64 concurrent
//! publishers, history per instance. Lines in criterion's result format, so
//! `cargo xtask bench` collects them.
//!
//! Settings: every publish waits for the broker's confirm; each instance on its own
//! connection, its queue exclusive and consumed without acknowledgements.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;

use realtime_amqp::{AmqpBus, AmqpBusConfig};
use realtime_conformance::measure;

fn url() -> String {
    std::env::var("REALTIME_AMQP_URL").unwrap_or_else(|_| realtime_amqp::DEFAULT_URL.into())
}

async fn instance(exchange: &str) -> realtime_core::Manager {
    let mut config = AmqpBusConfig::new(url());
    config.exchange = exchange.to_owned();
    config.durable_exchange = false;
    let bus = AmqpBus::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the AMQP bench needs a broker at {}: {e}", url()));
    measure::manager_on(Arc::new(bus), None)
}

fn main() {
    measure::run(2_000, |amount| async move {
        let exchange = format!("rt-bench-{:016x}", realtime_core::Epoch::fresh().0);
        let a = Arc::new(instance(&exchange).await);
        let b = instance(&exchange).await;
        measure::pair("amqp/per_instance", &a, &b, &[1, 16, 64], amount).await;
    });
}
