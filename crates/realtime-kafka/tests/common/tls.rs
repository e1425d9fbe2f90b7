//! A broker reachable only through TLS, for the TLS and SASL tests.

use std::net::SocketAddr;
use std::time::Duration;

use realtime_conformance::restart::OwnServer;
use realtime_conformance::tls::{TestCa, TlsProxy};
use realtime_core::Error;
use realtime_kafka::{KafkaBus, KafkaBusConfig, KafkaTls};

use super::broker::own_broker_advertising;

/// A broker reachable only through TLS: the proxy (certificate for `names`) and tansu.
pub async fn tls_broker(ca: &TestCa, names: &[&str]) -> (TlsProxy, OwnServer) {
    behind(TlsProxy::start(&ca.server(names)).await)
}

/// tansu advertising `proxy`'s port, and the proxy relaying to it.
pub fn behind(proxy: TlsProxy) -> (TlsProxy, OwnServer) {
    let broker = own_broker_advertising(proxy.port);
    proxy.forward_to(SocketAddr::from(([127, 0, 0, 1], broker.port)));
    (proxy, broker)
}

pub fn config(proxy: &TlsProxy, tls: KafkaTls) -> KafkaBusConfig {
    let mut config = KafkaBusConfig::new(format!("127.0.0.1:{}", proxy.port));
    config.topic = format!("rt-tls-{:016x}", realtime_core::Epoch::fresh().0);
    config.partitions = 2;
    config.operation_timeout = Duration::from_secs(3);
    config.tls = Some(tls);
    config
}

pub fn expect_error(result: realtime_core::Result<KafkaBus>) -> Error {
    match result {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(error) => error,
    }
}

pub fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rt-kafka-tls-{:016x}",
        realtime_core::Epoch::fresh().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
