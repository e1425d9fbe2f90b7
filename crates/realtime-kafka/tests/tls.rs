//! TLS and SASL against a real broker: tansu of the test's own behind a TLS-terminating
//! proxy whose certificate a CA generated here signed, with the broker's advertised
//! listener pointing at the proxy (the client's second connection, to the partition
//! leader, goes through TLS too). tansu cannot require SASL: what can be proven is that
//! the settings reach librdkafka, that a broker without SASL is a clear error, and that no
//! secret shows anywhere.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::broker::own_broker_advertising;
use realtime_conformance::restart::OwnServer;
use realtime_conformance::tls::{TestCa, TlsProxy};
use realtime_core::Error;
use realtime_kafka::{
    KafkaBus, KafkaBusConfig, KafkaTls, OAuthToken, OAuthTokenProvider, Pem, Sasl, TokenError,
};

/// A broker reachable only through TLS: the proxy (certificate for `names`) and tansu.
async fn tls_broker(ca: &TestCa, names: &[&str]) -> (TlsProxy, OwnServer) {
    behind(TlsProxy::start(&ca.server(names)).await)
}

/// tansu advertising `proxy`'s port, and the proxy relaying to it.
fn behind(proxy: TlsProxy) -> (TlsProxy, OwnServer) {
    let broker = own_broker_advertising(proxy.port);
    proxy.forward_to(SocketAddr::from(([127, 0, 0, 1], broker.port)));
    (proxy, broker)
}

fn config(proxy: &TlsProxy, tls: KafkaTls) -> KafkaBusConfig {
    let mut config = KafkaBusConfig::new(format!("127.0.0.1:{}", proxy.port));
    config.topic = format!("rt-tls-{:016x}", realtime_core::Epoch::fresh().0);
    config.partitions = 2;
    config.operation_timeout = Duration::from_secs(3);
    config.tls = Some(tls);
    config
}

fn expect_error(result: realtime_core::Result<KafkaBus>) -> Error {
    match result {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(error) => error,
    }
}

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

/// Every log line of the test, to look for secrets in.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct CountingProvider(Arc<AtomicUsize>);

const TOKEN: &str = "eyJhbGciOiJub25lIn0.token-that-must-never-show";

impl OAuthTokenProvider for CountingProvider {
    fn token(&self) -> Result<OAuthToken, TokenError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(OAuthToken::new(
            TOKEN,
            "app",
            SystemTime::now() + Duration::from_secs(3600),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_settings_reach_the_broker_and_no_secret_shows_anywhere() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    const PASSWORD: &str = "pa55-that-must-never-show";
    let ca = TestCa::new("sasl test CA");
    let (proxy, _broker) = tls_broker(&ca, &["127.0.0.1"]).await;
    let mut errors = Vec::new();
    for sasl in [
        Sasl::plain("app", PASSWORD),
        Sasl::scram_sha_256("app", PASSWORD),
        Sasl::scram_sha_512("app", PASSWORD),
    ] {
        let mut config = config(&proxy, KafkaTls::with_ca(Pem::Text(ca.pem())));
        config.sasl = Some(sasl.clone());
        let printed = format!("{config:?}");
        assert!(!printed.contains(PASSWORD), "{printed}");
        // tansu has no SASL: librdkafka's handshake is refused, and the error says so.
        let error = expect_error(KafkaBus::connect(config).await);
        let message = error.to_string();
        eprintln!("{}: {message}", sasl.mechanism());
        assert!(message.contains("SASL"), "{}: {message}", sasl.mechanism());
        errors.push(format!("{error:?} {error}"));
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let mut config = config(&proxy, KafkaTls::with_ca(Pem::Text(ca.pem())));
    config.sasl = Some(Sasl::oauth_bearer(CountingProvider(calls.clone())));
    config.create_topic = false;
    let error = expect_error(KafkaBus::connect(config).await);
    assert!(
        calls.load(Ordering::SeqCst) > 0,
        "the token provider was never asked: {error}"
    );
    assert!(error.to_string().contains("SASL"), "{error}");
    errors.push(format!("{error:?} {error}"));

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    for text in errors.iter().chain([&logs]) {
        assert!(
            !text.contains(PASSWORD) && !text.contains(TOKEN),
            "a secret shows in: {text}"
        );
    }
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

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rt-kafka-tls-{:016x}",
        realtime_core::Epoch::fresh().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
