//! Kafka as the bus between two instances, against the broker on 127.0.0.1:9092
//! (`REALTIME_KAFKA_BROKERS`; `cargo xtask bench` starts tansu there): publish → deliver
//! latency (p50/p99, one event at a time, publisher on one instance, subscriber on the other)
//! and publishes/s with 1 and 64 concurrent publishers, per history mode. Lines in
//! criterion's result format, so `cargo xtask bench` collects them.
//!
//! Producer settings: idempotent, `acks=all`, `linger.ms=1`, `message.timeout.ms` = the
//! send timeout (5 s); consumer `fetch.wait.max.ms` 100 ms (the default) and 10 ms.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use realtime_core::{History, Manager, ManagerConfig, Message, PublishRequest, SubscribeRequest};
use realtime_kafka::{KafkaBus, KafkaBusConfig};
use realtime_redis::{RedisStore, RedisStoreConfig};

/// How much to measure: `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
/// binary without it, and then a smoke run is enough.
struct Amount {
    latency_samples: usize,
    throughput_for: Duration,
}

fn brokers() -> String {
    std::env::var("REALTIME_KAFKA_BROKERS")
        .unwrap_or_else(|_| realtime_kafka::DEFAULT_BROKERS.into())
}

async fn instance(topic: &str, history: History, prefix: &str, fetch_wait: Duration) -> Manager {
    let mut config = KafkaBusConfig::new(brokers());
    config.topic = topic.to_owned();
    config.fetch_wait = fetch_wait;
    let bus = KafkaBus::connect(config)
        .await
        .unwrap_or_else(|e| panic!("the Kafka bench needs a broker at {}: {e}", brokers()));
    let mut manager = ManagerConfig::default();
    manager.history = history;
    manager.client_buffer = 65_536;
    let mut builder = Manager::builder().config(manager).bus(Arc::new(bus));
    if history == History::Shared {
        let mut store = RedisStoreConfig::default();
        store.prefix = prefix.to_owned();
        builder = builder.store(Arc::new(RedisStore::connect(store).await.unwrap()));
    }
    builder.build().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn measure(history: History, fetch_wait: Duration, label: &str, amount: &Amount) {
    let id = realtime_core::Epoch::fresh().0;
    let (topic, prefix) = (
        format!("rt-bench-{id:016x}"),
        format!("rt-bench:{id:016x}:"),
    );
    let a = instance(&topic, history, &prefix, fetch_wait).await;
    let b = instance(&topic, history, &prefix, fetch_wait).await;
    let mut client = b
        .subscribe(SubscribeRequest::channel("bench"))
        .await
        .unwrap()
        .client;
    let payload = "x".repeat(100);
    let mut latencies = Vec::with_capacity(amount.latency_samples);
    for _ in 0..amount.latency_samples {
        let started = Instant::now();
        a.publish(PublishRequest::new("bench", payload.clone()))
            .await
            .unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), client.recv()).await {
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
        "kafka/{label}/publish_to_deliver_p50 time: [{:.3} ms]",
        ms(percentile(&latencies, 0.50))
    );
    println!(
        "kafka/{label}/publish_to_deliver_p99 time: [{:.3} ms]",
        ms(percentile(&latencies, 0.99))
    );
    drop(client);
    let a = Arc::new(a);
    for publishers in [1usize, 64] {
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
        println!("kafka/{label}/publishes_{publishers}_concurrent thrpt: [{rate:.0} elem/s]");
    }
}

fn main() {
    let amount = if std::env::args().any(|a| a == "--bench") {
        Amount {
            latency_samples: 1_000,
            throughput_for: Duration::from_secs(3),
        }
    } else {
        Amount {
            latency_samples: 10,
            throughput_for: Duration::from_millis(200),
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (default, short) = (Duration::from_millis(100), Duration::from_millis(10));
        measure(History::PerInstance, default, "per_instance", &amount).await;
        measure(History::Shared, default, "shared_redis_store", &amount).await;
        // tansu holds a fetch for the whole wait even when data arrives (Kafka does not):
        // the same with a 10 ms wait shows the latency of the bus itself.
        measure(
            History::PerInstance,
            short,
            "per_instance_fetch_wait_10ms",
            &amount,
        )
        .await;
    });
}
