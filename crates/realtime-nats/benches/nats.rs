//! NATS as the bus between two instances, against the server on 127.0.0.1:4222
//! (`REALTIME_NATS_URL`): publish → deliver latency (p50/p99, one event at a time, publisher
//! on one instance, subscriber on the other) and publishes/s with 1, 16 and 64 concurrent
//! publishers, history per instance. Lines in criterion's result format, so
//! `cargo xtask bench` collects them.
//!
//! Settings: every publish waits for its round trip through the server (the bus's
//! promise), each instance on its own connection.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;

use realtime_conformance::measure;
use realtime_nats::{NatsBus, NatsBusConfig};

fn url() -> String {
    std::env::var("REALTIME_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn instance(prefix: &str) -> realtime_core::Manager {
    let mut config = NatsBusConfig::new(url());
    config.subject_prefix = prefix.to_owned();
    let bus = NatsBus::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the NATS bench needs a server at {}: {e}", url()));
    measure::manager_on(Arc::new(bus), None)
}

fn main() {
    measure::run(2_000, |amount| async move {
        let prefix = format!("rt-bench.{:016x}.", realtime_core::Epoch::fresh().0);
        let a = Arc::new(instance(&prefix).await);
        let b = instance(&prefix).await;
        measure::pair("nats/per_instance", &a, &b, &[1, 16, 64], amount).await;
    });
}
