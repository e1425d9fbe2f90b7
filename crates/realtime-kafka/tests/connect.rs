//! Start-up against brokers that are not there: a clear, retryable error within the
//! operation timeout, not a hang.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use realtime_kafka::{KafkaBus, KafkaBusConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_broker_at_start_is_a_clear_retryable_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = KafkaBusConfig::new(format!("127.0.0.1:{port}"));
    config.operation_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = KafkaBus::connect(config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_retryable(), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("broker running"),
        "{message}"
    );
}

/// On a single-threaded runtime too (actix-web's workers and `System` are): no blocking
/// call panics or stalls the runtime.
#[tokio::test(flavor = "current_thread")]
async fn connects_and_subscribes_on_a_current_thread_runtime() {
    use realtime_core::Bus;
    let brokers =
        std::env::var("REALTIME_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let mut config = KafkaBusConfig::new(&brokers);
    config.topic = format!("rt-test-{:016x}", realtime_core::Epoch::fresh().0);
    config.partitions = 2;
    let bus = KafkaBus::connect(config).await.unwrap_or_else(|e| {
        panic!("this test needs a broker at {brokers} (`cargo xtask test` starts tansu): {e}")
    });
    let subscription = bus.subscribe("c").await.unwrap();
    assert_eq!(bus.assigned_partitions(), 1);
    drop(subscription);
    bus.close().await.unwrap();
}
