//! What an outage costs in log lines: a bus refusing every publish used to write a warning
//! per event — 1,000 publishes, 1,000 lines; a minute-long outage under load, millions.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::FlakyBus;
use realtime_core::{InMemoryBus, InMemoryStore, Manager, PublishRequest};

/// Counts the warnings written by the manager's publish path.
#[derive(Default)]
struct Warnings(Arc<AtomicUsize>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::WARN
            && metadata.target().starts_with("realtime_core::manager")
        {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(flavor = "current_thread")]
async fn a_bus_refusing_every_publish_costs_a_line_per_interval_not_per_event() {
    let warnings = Warnings::default();
    let count = warnings.0.clone();
    let _guard = tracing::subscriber::set_default(warnings);
    let manager = Manager::builder()
        .store(Arc::new(InMemoryStore::new()))
        .bus(Arc::new(FlakyBus::refusing(
            InMemoryBus::new(),
            0..usize::MAX,
        )))
        .build()
        .unwrap();
    for i in 0..1_000 {
        // Stored, so the publish succeeds; the bus hand-off is retried in the background.
        manager
            .publish(PublishRequest::new("c", format!("{i}")))
            .await
            .unwrap();
    }
    let written = count.load(Ordering::Relaxed);
    assert!(
        (1..=2).contains(&written),
        "1,000 refused publishes wrote {written} warnings"
    );
}
