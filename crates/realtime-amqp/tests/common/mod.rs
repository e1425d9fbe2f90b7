//! A fresh exchange on the local RabbitMQ for each test, and a fresh namespace on the local
//! Redis for the shared store.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use realtime_amqp::{AmqpBus, AmqpBusConfig};
use realtime_conformance::Backend;
use realtime_core::{Bus, Result, Store};
use realtime_redis::{RedisStore, RedisStoreConfig};

/// Where the tests expect RabbitMQ; `REALTIME_AMQP_URL` overrides it.
pub fn url() -> String {
    std::env::var("REALTIME_AMQP_URL").unwrap_or_else(|_| realtime_amqp::DEFAULT_URL.into())
}

pub fn redis_url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| realtime_redis::DEFAULT_URL.into())
}

pub const MAX_EVENTS: usize = 50;

/// Test timings: quick to notice and to reconnect.
pub fn config(url: &str, exchange: &str) -> AmqpBusConfig {
    let mut config = AmqpBusConfig::new(url);
    config.exchange = exchange.to_owned();
    // One exchange per test: forgotten when the broker restarts.
    config.durable_exchange = false;
    config.operation_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(2);
    config.reconnect_delay_max = Duration::from_millis(200);
    config
}

/// An exchange (and a Redis namespace) no other test uses.
pub struct AmqpBackend {
    pub exchange: String,
    store: Arc<RedisStore>,
}

impl AmqpBackend {
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
        AmqpBackend {
            exchange: format!("rt-test-{id:016x}"),
            store: Arc::new(store),
        }
    }
}

#[async_trait]
impl Backend for AmqpBackend {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        match AmqpBus::connect(config(&url(), &self.exchange)).await {
            Ok(bus) => Ok(Arc::new(bus)),
            Err(error) => panic!(
                "these tests need RabbitMQ at {} (the machine's service; `rabbitmq-server -detached` starts one): {error}",
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
