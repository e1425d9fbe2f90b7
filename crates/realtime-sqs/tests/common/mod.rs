//! A fresh queue prefix on the local SQS endpoint for each test, and a fresh namespace on the
//! local Redis for the shared store.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use realtime_conformance::Backend;
use realtime_core::{Bus, Result, Store};
use realtime_redis::{RedisStore, RedisStoreConfig};
use realtime_sqs::{SqsBus, SqsBusConfig};

/// Where the tests expect an SQS endpoint; `REALTIME_SQS_ENDPOINT` overrides it.
pub fn endpoint() -> String {
    std::env::var("REALTIME_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

pub fn redis_url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| realtime_redis::DEFAULT_URL.into())
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

/// Queues (and a Redis namespace) no other test uses.
pub struct SqsBackend {
    pub prefix: String,
    store: Arc<RedisStore>,
}

impl SqsBackend {
    pub async fn connect() -> Self {
        let id = realtime_core::Epoch::fresh().0;
        let mut config = RedisStoreConfig::default();
        config.url = redis_url();
        config.prefix = format!("rt-test:{id:016x}:");
        config.max_events_per_channel = MAX_EVENTS;
        let store = match RedisStore::connect(config).await {
            Ok(store) => store,
            Err(error) => panic!("these tests need Redis at {}: {error}", redis_url()),
        };
        SqsBackend {
            prefix: format!("rt-{id:016x}-"),
            store: Arc::new(store),
        }
    }

    pub async fn new_bus(&self) -> Result<SqsBus> {
        SqsBus::connect(config(&endpoint(), &self.prefix)).await
    }
}

#[async_trait]
impl Backend for SqsBackend {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        match self.new_bus().await {
            Ok(bus) => Ok(Arc::new(bus)),
            Err(error) => panic!(
                "these tests need an SQS endpoint at {} (`cargo xtask test` starts moto there): {error}",
                endpoint()
            ),
        }
    }

    fn max_events_per_channel(&self) -> usize {
        MAX_EVENTS
    }

    async fn lose_history(&self, channel: &str) -> Result<()> {
        let (meta, stream) = self.store.keys(channel);
        let mut redis = redis::Client::open(redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(meta)
            .arg(stream)
            .query_async(&mut redis)
            .await
            .unwrap();
        Ok(())
    }
}

pub mod endpoint;
