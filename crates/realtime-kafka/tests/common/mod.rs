//! A fresh topic on the local Kafka-protocol broker for each test, and a fresh namespace on
//! the local Redis for the shared store.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use realtime_conformance::Backend;
use realtime_core::{Bus, Result, Store};
use realtime_kafka::{KafkaBus, KafkaBusConfig};
use realtime_redis::{RedisStore, RedisStoreConfig};

/// Where the tests expect the broker; `REALTIME_KAFKA_BROKERS` overrides it.
pub fn brokers() -> String {
    std::env::var("REALTIME_KAFKA_BROKERS")
        .unwrap_or_else(|_| realtime_kafka::DEFAULT_BROKERS.into())
}

/// Where the tests expect Redis (the shared store); `REALTIME_REDIS_URL` overrides it.
pub fn redis_url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| realtime_redis::DEFAULT_URL.into())
}

pub const MAX_EVENTS: usize = 50;

/// A topic (and a Redis namespace) no other test uses.
pub struct KafkaBackend {
    pub topic: String,
    pub prefix: String,
    store: Arc<RedisStore>,
}

impl KafkaBackend {
    pub async fn connect() -> Self {
        let id = realtime_core::Epoch::fresh().0;
        let prefix = format!("rt-test:{id:016x}:");
        let mut config = RedisStoreConfig::default();
        config.url = redis_url();
        config.prefix = prefix.clone();
        config.max_events_per_channel = MAX_EVENTS;
        let store = match RedisStore::connect(config).await {
            Ok(store) => store,
            Err(error) => panic!("these tests need Redis at {}: {error}", redis_url()),
        };
        let backend = KafkaBackend {
            topic: format!("rt-test-{id:016x}"),
            prefix,
            store: Arc::new(store),
        };
        // Fail here, saying how to start the broker, rather than in the middle of a test.
        if let Err(error) = backend.new_bus().await {
            panic!(
                "these tests need a Kafka-protocol broker at {} (`cargo xtask services` starts \
                 tansu there): {error}",
                brokers()
            );
        }
        backend
    }

    pub fn config(&self) -> KafkaBusConfig {
        let mut config = KafkaBusConfig::new(brokers());
        config.topic = self.topic.clone();
        config.partitions = 3;
        config
    }

    pub async fn new_bus(&self) -> Result<KafkaBus> {
        KafkaBus::connect(self.config()).await
    }
}

#[async_trait]
impl Backend for KafkaBackend {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        Ok(Arc::new(self.new_bus().await?))
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

pub mod broker;
