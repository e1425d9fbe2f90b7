//! A fresh namespace on the local Redis for each test.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use realtime_conformance::Backend;
use realtime_core::{Bus, Result, Store};
use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};

/// Where the tests expect Redis; `REALTIME_REDIS_URL` overrides it.
pub fn url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| realtime_redis::DEFAULT_URL.into())
}

pub const MAX_EVENTS: usize = 50;

/// Where the cluster tests expect a Redis Cluster node (`cargo xtask services` starts a
/// local one); `REALTIME_REDIS_CLUSTER_URL` overrides it.
pub fn cluster_url() -> String {
    std::env::var("REALTIME_REDIS_CLUSTER_URL").unwrap_or_else(|_| "redis://127.0.0.1:30001".into())
}

pub struct RedisBackend {
    pub prefix: String,
    pub store: Arc<RedisStore>,
    pub url: String,
    pub cluster: bool,
}

/// A prefix no other test run uses: tests never flush the database.
pub fn unique_prefix() -> String {
    format!("rt-test:{:016x}:", realtime_core::Epoch::fresh().0)
}

impl RedisBackend {
    pub async fn connect() -> Self {
        Self::connect_to(url(), false).await
    }

    /// On the local Redis Cluster, sharded pub/sub.
    pub async fn connect_cluster() -> Self {
        Self::connect_to(cluster_url(), true).await
    }

    async fn connect_to(url: String, cluster: bool) -> Self {
        let prefix = unique_prefix();
        let mut config = RedisStoreConfig::new(url.clone());
        config.cluster = cluster;
        config.prefix = prefix.clone();
        config.max_events_per_channel = MAX_EVENTS;
        config.idle_ttl = std::time::Duration::from_secs(600);
        let store = match RedisStore::connect(config).await {
            Ok(store) => store,
            Err(error) if cluster => panic!(
                "these tests need a Redis Cluster node at {url} (`cargo xtask services` starts \
                 a local cluster): {error}"
            ),
            Err(error) => panic!("these tests need Redis at {url}: {error}"),
        };
        RedisBackend {
            prefix,
            store: Arc::new(store),
            url,
            cluster,
        }
    }

    pub async fn new_bus(&self) -> RedisBus {
        let mut config = RedisBusConfig::new(self.url.clone());
        config.cluster = self.cluster;
        config.prefix = self.prefix.clone();
        RedisBus::connect(config).await.unwrap()
    }
}

/// A plain connection for test set-up and fault injection.
pub async fn admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[async_trait]
impl Backend for RedisBackend {
    async fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(self.store.clone())
    }

    async fn bus(&self) -> Result<Arc<dyn Bus>> {
        Ok(Arc::new(self.new_bus().await))
    }

    fn max_events_per_channel(&self) -> usize {
        MAX_EVENTS
    }

    async fn lose_history(&self, channel: &str) -> Result<()> {
        let (meta, stream) = self.store.keys(channel);
        let mut delete = redis::cmd("DEL");
        delete.arg(meta).arg(stream);
        if self.cluster {
            let client = redis::cluster::ClusterClient::new([self.url.as_str()]).unwrap();
            let mut connection = client.get_async_connection().await.unwrap();
            let _: () = delete.query_async(&mut connection).await.unwrap();
        } else {
            let _: () = delete.query_async(&mut admin().await).await.unwrap();
        }
        Ok(())
    }
}

pub mod cluster;
pub mod server;
