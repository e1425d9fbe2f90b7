//! The local SQS endpoint for the tests: a queue prefix per backend value.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use realtime_conformance::BusOnly;
use realtime_sqs::{SqsBus, SqsBusConfig};

/// Where the tests expect an SQS endpoint; `REALTIME_SQS_ENDPOINT` overrides it.
pub fn endpoint() -> String {
    std::env::var("REALTIME_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

pub const MAX_EVENTS: usize = 50;

/// Test timings: quick discovery, short polls.
pub fn config(endpoint: &str, prefix: &str) -> SqsBusConfig {
    let mut config = SqsBusConfig::local(endpoint);
    config.queue_prefix = prefix.to_owned();
    config.discovery_interval = Duration::from_millis(100);
    config.wait_time = Duration::from_secs(1);
    config.operation_timeout = Duration::from_secs(2);
    config
}

/// A plain client of the shared endpoint, for set-up, checks and clean-up.
pub fn client() -> aws_sdk_sqs::Client {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Deletes every queue whose name starts with `prefix` (on a thread of its own: it runs in
/// `Drop`, maybe inside a runtime). Best effort, within 10 s.
pub fn delete_queues(prefix: &str) {
    let prefix = prefix.to_owned();
    let cleaning = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let client = client();
            let work = async {
                let listed = client
                    .list_queues()
                    .queue_name_prefix(&prefix)
                    .send()
                    .await
                    .ok()?;
                for url in listed.queue_urls() {
                    let _ = client.delete_queue().queue_url(url).send().await;
                }
                Some(())
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), work).await;
        });
    });
    let _ = cleaning.join();
}

/// Buses under a queue prefix no other test uses; their queues are deleted when the test
/// ends (a bus dropped without `close` leaves its queue: 185 were left after one run).
pub fn buses() -> BusOnly {
    let prefix = format!("rt-{:016x}-", realtime_core::Epoch::fresh().0);
    let left = prefix.clone();
    BusOnly::new(MAX_EVENTS, move || {
        let config = config(&endpoint(), &prefix);
        async move {
            SqsBus::connect(config).await.map_err(|error| {
                panic!(
                    "these tests need an SQS endpoint at {} (`cargo xtask services` starts moto \
                     there): {error}",
                    endpoint()
                )
            })
        }
    })
    .cleanup(move || delete_queues(&left))
}

pub mod endpoint;
