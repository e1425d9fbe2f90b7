//! TLS against a real broker: tansu of the test's own behind a TLS-terminating proxy whose
//! certificate a CA generated here signed, with the broker's advertised listener pointing
//! at the proxy (the client's second connection, to the partition leader, goes through TLS
//! too). SASL: `tests/secrets.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::tls::{behind, config, expect_error, tempdir, tls_broker};
use realtime_conformance::tls::{TestCa, TlsProxy};
use realtime_kafka::{KafkaBus, KafkaBusConfig, KafkaTls, Pem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_over_tls_trusting_a_private_ca_given_as_text_or_file() {
    let ca = TestCa::new("realtime kafka test CA");
    let (proxy, _broker) = tls_broker(&ca, &["127.0.0.1"]).await;
    let dir = tempdir();
    let by_text = config(&proxy, KafkaTls::with_ca(Pem::Text(ca.pem())));
    let mut by_file = by_text.clone();
    by_file.tls = Some(KafkaTls::with_ca(Pem::File(ca.write(&dir))));
    exchange(by_text, by_file).await;
}

/// An instance on `a` publishes, one on `b` receives.
async fn exchange(a: KafkaBusConfig, b: KafkaBusConfig) {
    let a = KafkaBus::connect(a).await.unwrap();
    let b = KafkaBus::connect(b).await.unwrap();
    realtime_conformance::exchange::exchange(Arc::new(a), Arc::new(b), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate_from_files() {
    let ca = TestCa::new("mutual TLS CA");
    let (proxy, _broker) =
        behind(TlsProxy::start_verifying_clients(&ca.server(&["127.0.0.1"]), &ca).await);
    let dir = tempdir();
    let (certificate, key) = ca.client("realtime").write(&dir, "client");
    let mut tls = KafkaTls::with_ca(Pem::File(ca.write(&dir)));
    tls.client_certificate = Some(Pem::File(certificate));
    tls.client_key = Some(Pem::File(key));
    let with_certificate = config(&proxy, tls);
    exchange(with_certificate.clone(), with_certificate).await;
    // Without the client certificate the proxy ends the handshake.
    let error = expect_error(
        KafkaBus::connect(config(&proxy, KafkaTls::with_ca(Pem::Text(ca.pem())))).await,
    );
    eprintln!("no client certificate: {error}");
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_and_a_wrong_host_name_are_retryable_errors_naming_the_certificate() {
    let ca = TestCa::new("the broker's CA");
    let (proxy, _broker) = tls_broker(&ca, &["127.0.0.1"]).await;
    let stranger = TestCa::new("another CA");
    let error = expect_error(
        KafkaBus::connect(config(&proxy, KafkaTls::with_ca(Pem::Text(stranger.pem())))).await,
    );
    assert!(error.is_retryable(), "{error}");
    let message = error.to_string();
    eprintln!("unknown CA: {message}");
    assert!(message.contains("certificate verify failed"), "{message}");

    // The right CA, but a certificate for another host.
    let (elsewhere, _other_broker) = tls_broker(&ca, &["kafka.example.internal"]).await;
    let error = expect_error(
        KafkaBus::connect(config(&elsewhere, KafkaTls::with_ca(Pem::Text(ca.pem())))).await,
    );
    assert!(error.is_retryable(), "{error}");
    let message = error.to_string();
    eprintln!("wrong host: {message}");
    assert!(message.contains("certificate verify failed"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_it_creates_takes_the_brokers_replication_unless_told() {
    // tansu answers a creation with replication -1 (the broker's default) as Kafka does.
    let mut config = common::config(&format!("rt-repl-{:016x}", realtime_core::Epoch::fresh().0));
    assert_eq!(config.replication, None);
    let bus = KafkaBus::connect(config.clone()).await.unwrap_or_else(|e| {
        panic!(
            "this test needs the broker at {} (`cargo xtask services`): {e}",
            common::brokers()
        )
    });
    drop(bus);
    config.topic.push_str("-fixed");
    config.replication = Some(1);
    KafkaBus::connect(config).await.unwrap();
}
