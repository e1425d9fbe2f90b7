//! Redis store and bus: append, read from a position, publish→deliver across two instances,
//! and one round trip (append and PUBLISH in one script) against two (append, then PUBLISH).
//!
//! Concurrent publishers (1, 16, 64) measure publishes/s through one instance, with Redis's
//! own CPU printed beside each.
//!
//! Needs Redis on 127.0.0.1:6379 (or `REALTIME_REDIS_URL`). `cargo xtask bench`.

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use realtime_core::{
    Bus, Epoch, Manager, Message, NewEvent, Position, PublishRequest, Store, SubscribeRequest,
};
use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};

fn url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| realtime_redis::DEFAULT_URL.into())
}

fn prefix() -> String {
    format!("rt-bench:{:x}:", Epoch::fresh().0)
}

fn payload() -> String {
    format!(
        "{{\"sent_at\":1764430000000,\"body\":\"{}\"}}",
        "x".repeat(64)
    )
}

async fn store(prefix: &str) -> RedisStore {
    let mut config = RedisStoreConfig::default();
    config.url = url();
    config.prefix = prefix.into();
    config.idle_ttl = Duration::from_secs(300);
    // `REALTIME_BENCH_NO_DETECT=1`: the append without its restart check (`INFO server`).
    config.detect_restarts = std::env::var("REALTIME_BENCH_NO_DETECT").is_err();
    RedisStore::connect(config)
        .await
        .expect("Redis on 127.0.0.1:6379 (redis-server --daemonize yes)")
}

async fn bus(prefix: &str) -> RedisBus {
    let mut config = RedisBusConfig::default();
    config.url = url();
    config.prefix = prefix.into();
    RedisBus::connect(config).await.unwrap()
}

fn store_ops(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let prefix = prefix();
    let store = rt.block_on(store(&prefix));
    let bus = rt.block_on(bus(&prefix));
    let data = payload();
    let mut group = c.benchmark_group("redis");
    group.throughput(Throughput::Elements(1));
    group.bench_function("append", |b| {
        b.iter(|| {
            rt.block_on(store.append(NewEvent::new("append", data.clone())))
                .unwrap()
        })
    });
    group.bench_function("append_then_publish_two_round_trips", |b| {
        b.iter(|| {
            rt.block_on(async {
                let event = store
                    .append(NewEvent::new("two", data.clone()))
                    .await
                    .unwrap();
                bus.publish(&event, realtime_core::Origin::UNKNOWN)
                    .await
                    .unwrap();
            })
        })
    });
    // The store's script PUBLISHes the positioned message itself: what the manager does.
    assert!(store.publishes_to(&bus));
    group.bench_function("append_and_publish_one_round_trip", |b| {
        b.iter(|| {
            rt.block_on(store.append_and_publish(NewEvent::new("one", data.clone()), &bus))
                .unwrap()
        })
    });
    let head = rt.block_on(async {
        let mut last = None;
        for _ in 0..1_000 {
            last = Some(
                store
                    .append(NewEvent::new("history", data.clone()))
                    .await
                    .unwrap()
                    .id,
            );
        }
        last.unwrap()
    });
    let from = Position::new(head.epoch, head.offset - 100);
    group.throughput(Throughput::Elements(100));
    group.bench_function("read_100_after_position_of_1000", |b| {
        b.iter(|| rt.block_on(store.read("history", from, 1_000)).unwrap())
    });
    group.finish();
}

/// Two worker threads, as on this two-core machine's servers.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A publish on instance A until a client of instance B has the event, through Redis.
fn publish_to_deliver(c: &mut Criterion) {
    let rt = runtime();
    let prefix = prefix();
    let (a, b, mut client) = rt.block_on(async {
        let shared: Arc<dyn Store> = Arc::new(store(&prefix).await);
        let a = Manager::builder()
            .store(shared.clone())
            .bus(Arc::new(bus(&prefix).await))
            .build()
            .unwrap();
        let b = Manager::builder()
            .store(shared)
            .bus(Arc::new(bus(&prefix).await))
            .build()
            .unwrap();
        let client = b
            .subscribe(SubscribeRequest::channel("e2e"))
            .await
            .unwrap()
            .client;
        (a, b, client)
    });
    let data = payload();
    let mut group = c.benchmark_group("redis");
    group.throughput(Throughput::Elements(1));
    group.bench_function("publish_to_deliver_across_instances", |bench| {
        bench.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    a.publish(PublishRequest::new("e2e", data.clone()))
                        .await
                        .unwrap();
                    match client.recv().await {
                        Some(Message::Event(_)) => {}
                        other => panic!("expected an event, got {other:?}"),
                    }
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    drop(b);
}

/// Redis's own CPU time so far (user + system, seconds), from `INFO cpu`.
async fn redis_cpu_seconds() -> f64 {
    let client = redis::Client::open(url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut connection)
        .await
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
        .filter_map(|l| {
            l.split_once(':')
                .and_then(|(_, v)| v.trim().parse::<f64>().ok())
        })
        .sum()
}

/// Publishes through one instance (store and bus on one Redis: one script call each) from
/// 1, 16 and 64 concurrent publishers, each on its own channel; publishes/s, and Redis's CPU
/// over the whole measurement printed beside it (`redis_cpu:`, 100% = one core: Redis runs
/// commands on one thread).
fn concurrent_publishers(c: &mut Criterion) {
    let rt = runtime();
    let prefix = prefix();
    let manager = rt.block_on(async {
        Manager::builder()
            .store(Arc::new(store(&prefix).await))
            .bus(Arc::new(bus(&prefix).await))
            .build()
            .unwrap()
    });
    let data = bytes::Bytes::from(payload());
    let mut group = c.benchmark_group("redis");
    group.throughput(Throughput::Elements(1));
    for publishers in [1usize, 16, 64] {
        let name = format!("publish_concurrently_{publishers}");
        let (cpu_before, started) = (rt.block_on(redis_cpu_seconds()), Instant::now());
        group.bench_function(&name, |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..publishers)
                        .map(|p| {
                            // `iters` publishes in all, split over the publishers.
                            let share = iters / publishers as u64
                                + u64::from((p as u64) < iters % publishers as u64);
                            let (manager, data) = (manager.clone(), data.clone());
                            tokio::spawn(async move {
                                for _ in 0..share {
                                    let channel = format!("pub-{p}");
                                    manager
                                        .publish(PublishRequest::new(channel, data.clone()))
                                        .await
                                        .unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        let cpu = rt.block_on(redis_cpu_seconds()) - cpu_before;
        let share = 100.0 * cpu / started.elapsed().as_secs_f64();
        println!("redis/{name} redis_cpu: [{share:.0}%]");
    }
    group.finish();
}

criterion_group!(
    benches,
    store_ops,
    publish_to_deliver,
    concurrent_publishers
);
criterion_main!(benches);
