//! SQS as the bus between two instances, against the endpoint on 127.0.0.1:4566 (moto;
//! `REALTIME_SQS_ENDPOINT`; `cargo xtask bench` starts it): publish → deliver latency
//! (p50/p99, one event at a time, publisher on one instance, subscriber on the other) and
//! publishes/s with 1 and 16 concurrent publishers, history per instance. Lines in
//! criterion's result format, so `cargo xtask bench` collects them.
//!
//! Settings: a FIFO queue per instance, long polls of 20 s (a receive returns as soon as a
//! message is there), batches of 10, every publish sent to both instances' queues.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use realtime_conformance::measure;
use realtime_sqs::{SqsBus, SqsBusConfig};

fn endpoint() -> String {
    std::env::var("REALTIME_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

async fn instance(prefix: &str) -> realtime_core::Manager {
    let mut config = SqsBusConfig::local(endpoint());
    config.queue_prefix = prefix.to_owned();
    config.discovery_interval = Duration::from_millis(500);
    let bus = SqsBus::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the SQS bench needs an endpoint at {}: {e}", endpoint()));
    measure::manager_on(Arc::new(bus), None)
}

fn main() {
    measure::run(500, |amount| async move {
        let prefix = format!("rt-bench-{:016x}-", realtime_core::Epoch::fresh().0);
        let a = Arc::new(instance(&prefix).await);
        let b = instance(&prefix).await;
        measure::pair("sqs/per_instance", &a, &b, &[1, 16], amount).await;
    });
}
