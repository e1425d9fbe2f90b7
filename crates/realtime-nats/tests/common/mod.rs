//! The local NATS server for the tests: a subject prefix per backend value.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use realtime_conformance::BusOnly;
use realtime_nats::{NatsBus, NatsBusConfig};

/// Where the tests expect NATS; `REALTIME_NATS_URL` overrides it.
pub fn url() -> String {
    std::env::var("REALTIME_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub const MAX_EVENTS: usize = 50;

/// Test timings: quick to notice and to reconnect.
pub fn config(url: &str, prefix: &str) -> NatsBusConfig {
    let mut config = NatsBusConfig::new(url);
    config.subject_prefix = prefix.to_owned();
    config.operation_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(1);
    config.reconnect_delay_max = Duration::from_millis(200);
    config
}

/// Buses under a subject prefix no other test uses (each call a new prefix: the tests of
/// one backend value run on one).
pub fn buses() -> BusOnly {
    let prefix = format!("rt-test.{:016x}.", realtime_core::Epoch::fresh().0);
    BusOnly::new(MAX_EVENTS, move || {
        let config = config(&url(), &prefix);
        async move {
            NatsBus::connect(config).await.map_err(|error| {
                panic!(
                    "these tests need NATS at {} (the machine's service; `cargo xtask services` starts one): {error}",
                    url()
                )
            })
        }
    })
}
