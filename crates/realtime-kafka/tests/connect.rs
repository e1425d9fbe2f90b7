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
