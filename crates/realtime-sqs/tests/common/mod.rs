//! The local SQS endpoint for the tests: a queue prefix per backend value.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use realtime_conformance::BusOnly;
use realtime_sqs::{SqsBus, SqsBusConfig};

/// Where the tests expect an SQS endpoint; `REALTIME_SQS_ENDPOINT` overrides it.
pub fn endpoint() -> String {
    std::env::var("REALTIME_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

pub const MAX_EVENTS: usize = 50;

/// Test timings: quick discovery, short polls.
pub fn config(endpoint: &str, prefix: &str) -> SqsBusConfig {
    let mut config = SqsBusConfig::local(endpoint);
    config.queue_prefix = prefix.to_owned();
    config.discovery_interval = Duration::from_millis(100);
    config.wait_time = Duration::from_secs(1);
    config.operation_timeout = Duration::from_secs(2);
    config
}

/// Buses under a queue prefix no other test uses.
pub fn buses() -> BusOnly {
    let prefix = format!("rt-{:016x}-", realtime_core::Epoch::fresh().0);
    BusOnly::new(MAX_EVENTS, move || {
        let config = config(&endpoint(), &prefix);
        async move {
            SqsBus::connect(config).await.map_err(|error| {
                panic!(
                    "these tests need an SQS endpoint at {} (`cargo xtask services` starts moto \
                     there): {error}",
                    endpoint()
                )
            })
        }
    })
}

pub mod endpoint;
