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
use std::time::{Duration, Instant};

use realtime_core::{History, Manager, ManagerConfig, Message, PublishRequest, SubscribeRequest};
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` a smoke run is enough.
    let full = std::env::args().any(|a| a == "--bench");
    let (samples, throughput_for) = if full {
        (500, Duration::from_secs(3))
    } else {
        (5, Duration::from_millis(200))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let prefix = format!("rt-bench-{:016x}-", realtime_core::Epoch::fresh().0);
        let a = Arc::new(instance(&prefix).await);
        let b = instance(&prefix).await;
        let mut client = b
            .subscribe(SubscribeRequest::channel("bench"))
            .await
            .unwrap()
            .client;
        let payload = "x".repeat(100);
        let mut latencies = Vec::with_capacity(samples);
        for _ in 0..samples {
            let started = Instant::now();
            a.publish(PublishRequest::new("bench", payload.clone()))
                .await
                .unwrap();
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
        println!(
            "sqs/per_instance/publish_to_deliver_p50 time: [{:.3} ms]",
            ms(percentile(&latencies, 0.50))
        );
        println!(
            "sqs/per_instance/publish_to_deliver_p99 time: [{:.3} ms]",
            ms(percentile(&latencies, 0.99))
        );
        for publishers in [1usize, 16] {
            let deadline = Instant::now() + throughput_for;
            let tasks: Vec<_> = (0..publishers)
                .map(|i| {
                    let (a, payload) = (a.clone(), payload.clone());
                    tokio::spawn(async move {
                        let mut sent = 0u64;
                        let channel = format!("load-{i}");
                        while Instant::now() < deadline {
                            a.publish(PublishRequest::new(channel.clone(), payload.clone()))
                                .await
                                .unwrap();
                            sent += 1;
                        }
                        sent
                    })
                })
                .collect();
            let started = Instant::now();
            let mut sent = 0;
            for task in tasks {
                sent += task.await.unwrap();
            }
            let rate = sent as f64 / started.elapsed().as_secs_f64();
            println!(
                "sqs/per_instance/publishes_{publishers}_concurrent thrpt: [{rate:.0} elem/s]"
            );
        }
    });
}
