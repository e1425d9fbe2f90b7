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

use realtime_conformance::measure::{self, Amount};
use realtime_core::{History, Manager, ManagerConfig};
use realtime_sqs::{SqsBus, SqsBusConfig};

fn endpoint() -> String {
    std::env::var("REALTIME_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

async fn instance(prefix: &str) -> Manager {
    let mut config = SqsBusConfig::local(endpoint());
    config.queue_prefix = prefix.to_owned();
    config.discovery_interval = Duration::from_millis(500);
    let bus = SqsBus::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the SQS bench needs an endpoint at {}: {e}", endpoint()));
    let mut manager = ManagerConfig::default();
    manager.history = History::PerInstance;
    manager.client_buffer = 65_536;
    Manager::builder()
        .config(manager)
        .bus(Arc::new(bus))
        .build()
        .unwrap()
}

fn main() {
    let amount = Amount::from_args(500);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let prefix = format!("rt-bench-{:016x}-", realtime_core::Epoch::fresh().0);
        let a = Arc::new(instance(&prefix).await);
        let b = instance(&prefix).await;
        measure::publish_to_deliver("sqs/per_instance", &a, &b, amount).await;
        for publishers in [1, 16] {
            measure::publish_rate("sqs/per_instance", &a, publishers, amount).await;
        }
    });
}
