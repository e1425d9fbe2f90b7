//! `rediss://`: the store and the bus over TLS, against a redis-server of the test's own that
//! speaks only TLS, with a certificate from a CA generated for the test.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::server::OwnRedis;
use common::unique_prefix;
use realtime_core::{BackendErrorKind, Error, Store};
use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};

fn configs(server: &OwnRedis, prefix: &str) -> (RedisStoreConfig, RedisBusConfig) {
    let mut store = RedisStoreConfig::new(server.url());
    store.root_certificate_pem = Some(server.ca_pem());
    store.prefix = prefix.to_owned();
    let mut bus = RedisBusConfig::new(server.url());
    bus.root_certificate_pem = Some(server.ca_pem());
    bus.prefix = prefix.to_owned();
    (store, bus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_bus_work_over_tls_trusting_a_private_ca() {
    let server = OwnRedis::start_tls();
    let prefix = unique_prefix();
    let (store_config, bus_config) = configs(&server, &prefix);
    let store = Arc::new(RedisStore::connect(store_config).await.unwrap());
    let bus = async || Arc::new(RedisBus::connect(bus_config.clone()).await.unwrap());
    // Appended by a's store and carried to b by the bus, both over TLS.
    let published = realtime_conformance::exchange::exchange(
        bus().await,
        bus().await,
        Some(store.clone() as Arc<dyn Store>),
    )
    .await;
    // Read back through the store's own connection.
    assert_eq!(store.head("orders").await.unwrap(), published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_an_unknown_ca_is_refused() {
    let server = OwnRedis::start_tls();
    let other = OwnRedis::start_tls();
    let (mut store_config, mut bus_config) = configs(&server, &unique_prefix());
    // Trusting another test server's CA, not this one's.
    store_config.root_certificate_pem = Some(other.ca_pem());
    bus_config.root_certificate_pem = Some(other.ca_pem());
    let store = RedisStore::connect(store_config).await.unwrap_err();
    let bus = RedisBus::connect(bus_config).await.unwrap_err();
    for error in [store, bus] {
        match &error {
            Error::Backend(backend) => {
                assert_eq!(backend.kind(), BackendErrorKind::Connection, "{error}");
                assert!(error.to_string().contains("certificate"), "{error}");
            }
            other => panic!("expected a connection error, got {other:?}"),
        }
    }
    // And a CA for a plain URL is a configuration mistake, said at once.
    let mut plain = RedisStoreConfig::new("redis://127.0.0.1:6379");
    plain.root_certificate_pem = Some(server.ca_pem());
    assert!(matches!(
        plain.validate(),
        Err(Error::InvalidConfig {
            field: "root_certificate_pem",
            ..
        })
    ));
}
