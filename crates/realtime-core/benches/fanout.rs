//! Manager fan-out, SSE encoding and decoding.
//!
//! `cargo xtask bench` (or `cargo bench -p realtime-core --bench fanout`).

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use realtime_core::{
    Event, InMemoryStore, Manager, ManagerConfig, NewEvent, Position, PublishRequest, Store,
    SubscribeRequest, sse,
};
use tokio::sync::Notify;

const CLIENTS: usize = 10_000;

fn payload() -> Bytes {
    Bytes::from(format!(
        "{{\"sent_at\":1764430000000,\"body\":\"{}\"}}",
        "x".repeat(64)
    ))
}

fn manager() -> Manager {
    let mut config = ManagerConfig::default();
    config.max_connections = CLIENTS * 2;
    Manager::builder().config(config).build().unwrap()
}

/// One publish, then every client takes its copy: the engine's cost per delivery.
fn fanout_drain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let manager = manager();
    let mut clients = rt.block_on(async {
        let mut clients = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            clients.push(
                manager
                    .subscribe(SubscribeRequest::channel("bench"))
                    .await
                    .unwrap()
                    .client,
            );
        }
        clients
    });
    let data = payload();
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    group.bench_function(BenchmarkId::new("publish_and_drain", CLIENTS), |b| {
        b.iter(|| {
            rt.block_on(manager.publish(PublishRequest::new("bench", data.clone())))
                .unwrap();
            for client in &mut clients {
                let message = client.try_recv().expect("delivered");
                if let realtime_core::Message::Event(event) = message {
                    std::hint::black_box(event.sse_frame());
                }
            }
        })
    });
    group.finish();
}

/// One publish to 10,000 client tasks parked on `recv()`: includes waking them.
fn fanout_tasks(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let manager = manager();
    let received = Arc::new(AtomicUsize::new(0));
    let all_received = Arc::new(Notify::new());
    rt.block_on(async {
        for _ in 0..CLIENTS {
            let mut client = manager
                .subscribe(SubscribeRequest::channel("tasks"))
                .await
                .unwrap()
                .client;
            let (received, all_received) = (received.clone(), all_received.clone());
            tokio::spawn(async move {
                while let Some(message) = client.recv().await {
                    if let realtime_core::Message::Event(event) = message {
                        std::hint::black_box(event.sse_frame());
                    }
                    if received.fetch_add(1, Ordering::AcqRel) + 1 == CLIENTS {
                        all_received.notify_one();
                    }
                }
            });
        }
    });
    let data = payload();
    let mut group = c.benchmark_group("fanout");
    group.throughput(Throughput::Elements(CLIENTS as u64));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function(BenchmarkId::new("publish_to_parked_tasks", CLIENTS), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    received.store(0, Ordering::Release);
                    let done = all_received.notified();
                    manager
                        .publish(PublishRequest::new("tasks", data.clone()))
                        .await
                        .unwrap();
                    done.await;
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn event(data: Bytes) -> Event {
    let mut new = NewEvent::new("orders", data);
    new.event_type = Some("order.created".into());
    new.into_event(Position::new(
        realtime_core::Epoch(0x9f3a_0c21_b4e5_d6f7),
        123_456,
    ))
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_encode");
    for (name, data) in [
        ("100B_one_line", payload()),
        (
            "1KiB_16_lines",
            Bytes::from(format!("{}\n", "y".repeat(63)).repeat(16)),
        ),
    ] {
        let event = event(data);
        group.throughput(Throughput::Bytes(event.data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| sse::encode_event(std::hint::black_box(&event)))
        });
    }
    group.finish();
}

fn store_read(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = InMemoryStore::new();
    let head = rt.block_on(async {
        let mut last = None;
        for _ in 0..1_000 {
            last = Some(
                store
                    .append(NewEvent::new("hist", payload()))
                    .await
                    .unwrap()
                    .id,
            );
        }
        last.unwrap()
    });
    let from = Position::new(head.epoch, head.offset - 100);
    let mut group = c.benchmark_group("memory_store");
    group.throughput(Throughput::Elements(100));
    group.bench_function("read_100_after_position_of_1000", |b| {
        b.iter(|| rt.block_on(store.read("hist", from, 1_000)).unwrap())
    });
    group.finish();
}

/// A 64 KiB data line arriving one byte at a time (a server trickling its frames): the
/// decoder's cost per byte must not grow with the line.
fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_decode");
    let line = format!("data: {}\n\n", "z".repeat(64 * 1024));
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("64KiB_line_1B_chunks", |b| {
        b.iter(|| {
            let mut decoder = sse::Decoder::new();
            let mut frames = 0;
            for byte in line.as_bytes() {
                frames += decoder.feed(std::slice::from_ref(byte)).len();
            }
            assert_eq!(frames, 1);
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    fanout_drain,
    fanout_tasks,
    encoding,
    decoding,
    store_read
);
criterion_main!(benches);
