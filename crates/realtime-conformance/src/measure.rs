//! What the bus benchmarks measure between two instances, for every network bus: publish →
//! deliver latency, and publishes per second. Printed in criterion's result format, so
//! `cargo xtask bench` collects the lines.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use realtime_core::{Manager, Message, PublishRequest, SubscribeRequest};
use tokio::time::Instant;

/// How much to measure: `cargo bench` passes `--bench`; `cargo test --all-targets` runs a
/// bench binary without it, and then a smoke run is enough.
#[derive(Debug, Clone, Copy)]
pub struct Amount {
    /// Publish → deliver samples.
    pub latency_samples: usize,
    /// How long each publish-rate run lasts.
    pub throughput_for: Duration,
}

impl Amount {
    /// A full run under `cargo bench` (`samples` latencies, 3 s per rate), a smoke run else.
    pub fn from_args(samples: usize) -> Amount {
        if std::env::args().any(|a| a == "--bench") {
            Amount {
                latency_samples: samples,
                throughput_for: Duration::from_secs(3),
            }
        } else {
            Amount {
                latency_samples: 5,
                throughput_for: Duration::from_millis(200),
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted.get(index).copied().unwrap_or_default()
}

/// One event at a time published on `a` until a client of `b` has it; prints
/// `<name>/publish_to_deliver_p50` and `_p99`.
pub async fn publish_to_deliver(name: &str, a: &Manager, b: &Manager, amount: Amount) {
    let mut client = b
        .subscribe(SubscribeRequest::channel("bench"))
        .await
        .unwrap_or_else(|e| panic!("subscribe: {e}"))
        .client;
    let payload = "x".repeat(100);
    let mut latencies = Vec::with_capacity(amount.latency_samples);
    for _ in 0..amount.latency_samples {
        let started = Instant::now();
        a.publish(PublishRequest::new("bench", payload.clone()))
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
        loop {
            match tokio::time::timeout(Duration::from_secs(30), client.recv()).await {
                Ok(Some(Message::Event(_))) => break,
                Ok(Some(_)) => continue,
                other => panic!("expected the event on the other instance, got {other:?}"),
            }
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (label, p) in [("p50", 0.50), ("p99", 0.99)] {
        println!(
            "{name}/publish_to_deliver_{label} time: [{:.3} ms]",
            ms(percentile(&latencies, p))
        );
    }
}

/// `publishers` tasks publishing on `a` (on up to 16 channels) for the amount's time;
/// prints `<name>/publishes_<n>_concurrent` in events per second.
pub async fn publish_rate(name: &str, a: &Arc<Manager>, publishers: usize, amount: Amount) {
    let payload = "x".repeat(100);
    let deadline = Instant::now() + amount.throughput_for;
    let tasks: Vec<_> = (0..publishers)
        .map(|i| {
            let (a, payload) = (a.clone(), payload.clone());
            tokio::spawn(async move {
                let mut sent = 0u64;
                let channel = format!("load-{}", i % 16);
                while Instant::now() < deadline {
                    a.publish(PublishRequest::new(channel.clone(), payload.clone()))
                        .await
                        .unwrap_or_else(|e| panic!("publish: {e}"));
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    let started = Instant::now();
    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap_or_default();
    }
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    println!("{name}/publishes_{publishers}_concurrent thrpt: [{rate:.0} elem/s]");
}

/// A manager on `bus` as the bus benchmarks run it: with `store` shared by the instances
/// ([`History::Shared`](realtime_core::History::Shared)), else history per instance;
/// 65,536-message client queues (the benchmark's subscriber never falls behind).
pub fn manager_on(
    bus: Arc<dyn realtime_core::Bus>,
    store: Option<Arc<dyn realtime_core::Store>>,
) -> Manager {
    let mut config = realtime_core::ManagerConfig::default();
    config.client_buffer = 65_536;
    config.history = if store.is_some() {
        realtime_core::History::Shared
    } else {
        realtime_core::History::PerInstance
    };
    let mut builder = Manager::builder().config(config).bus(bus);
    if let Some(store) = store {
        builder = builder.store(store);
    }
    builder
        .build()
        .unwrap_or_else(|error| panic!("a benchmark manager: {error}"))
}

/// Publish → deliver from `a` to `b`, then publishes/s on `a` with each number of
/// concurrent `publishers`.
pub async fn pair(name: &str, a: &Arc<Manager>, b: &Manager, publishers: &[usize], amount: Amount) {
    publish_to_deliver(name, a, b, amount).await;
    for &count in publishers {
        publish_rate(name, a, count, amount).await;
    }
}

/// Runs a bus benchmark on a two-worker runtime (the machine's cores), with the
/// [`Amount`] its arguments ask for (`samples` latencies under `cargo bench`).
pub fn run<F, Fut>(samples: usize, bench: F)
where
    F: FnOnce(Amount) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("a runtime: {error}"));
    runtime.block_on(bench(Amount::from_args(samples)));
}
