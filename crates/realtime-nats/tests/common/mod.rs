//! A fresh subject prefix on the local NATS server for each test, and a fresh namespace on
//! the local Redis for the shared store.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use realtime_conformance::Backend;
use realtime_core::{Bus, Result, Store};
use realtime_nats::{NatsBus, NatsBusConfig};
use realtime_redis::{RedisStore, RedisStoreConfig};

/// Where the tests expect NATS; `REALTIME_NATS_URL` overrides it.
pub fn url() -> String {
    std::env::var("REALTIME_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

pub fn redis_url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| realtime_redis::DEFAULT_URL.into())
}

pub const MAX_EVENTS: usize = 50;

/// Test timings: quick to notice and to reconnect.
pub fn config(url: &str, prefix: &str) -> NatsBusConfig {
    let mut config = NatsBusConfig::new(url);
    config.subject_prefix = prefix.to_owned();
    config.operation_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(1);
    config.reconnect_delay_max = Duration::from_millis(200);
    config
}

/// Subjects (and a Redis namespace) no other test uses.
pub struct NatsBackend {
    pub prefix: String,
    store: Arc<RedisStore>,
}

impl NatsBackend {
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
        NatsBackend {
            prefix: format!("rt-test.{id:016x}."),
            store: Arc::new(store),
        }
    }
}

#[async_trait]
impl Backend for NatsBackend {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        match NatsBus::connect(config(&url(), &self.prefix)).await {
            Ok(bus) => Ok(Arc::new(bus)),
            Err(error) => panic!(
                "these tests need NATS at {} (the machine's service; `nats-server -a 127.0.0.1 -p 4222` starts one): {error}",
                url()
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
