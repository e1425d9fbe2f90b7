//! The local RabbitMQ for the tests: an exchange per backend value.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use realtime_amqp::{AmqpBus, AmqpBusConfig};
use realtime_conformance::BusOnly;

/// Where the tests expect RabbitMQ; `REALTIME_AMQP_URL` overrides it.
pub fn url() -> String {
    std::env::var("REALTIME_AMQP_URL").unwrap_or_else(|_| realtime_amqp::DEFAULT_URL.into())
}

pub const MAX_EVENTS: usize = 50;

/// Test timings: quick to notice and to reconnect.
pub fn config(url: &str, exchange: &str) -> AmqpBusConfig {
    let mut config = AmqpBusConfig::new(url);
    config.exchange = exchange.to_owned();
    // One exchange per test: forgotten when the broker restarts.
    config.durable_exchange = false;
    config.operation_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(2);
    config.reconnect_delay_max = Duration::from_millis(200);
    config
}

/// Buses on an exchange no other test uses.
pub fn buses() -> BusOnly {
    let exchange = format!("rt-test-{:016x}", realtime_core::Epoch::fresh().0);
    BusOnly::new(MAX_EVENTS, move || {
        let config = config(&url(), &exchange);
        async move {
            AmqpBus::connect(config).await.map_err(|error| {
                panic!(
                    "these tests need RabbitMQ at {} (the machine's service; `cargo xtask services` starts one): {error}",
                    url()
                )
            })
        }
    })
}
