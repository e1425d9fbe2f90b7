//! The client over TLS: the demo behind a TLS-terminating proxy whose certificate is issued by
//! a certificate authority generated for the test.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use realtime_client::{Error, RealtimeClient, Update};
use realtime_core::{Manager, PublishRequest};
use realtime_demo::{Options, app_with, manager};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

const DEADLINE: Duration = Duration::from_secs(10);

/// A certificate authority: its PEM and its issuer, to sign a server certificate.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// The demo on a free port behind a TLS proxy whose certificate `authority` issued for
/// `localhost` only: the proxy's port and the demo's manager.
async fn tls_demo(authority: &CertifiedIssuer<'static, KeyPair>) -> (u16, Manager) {
    let options = Options::default();
    let manager = manager(&options).await.unwrap();
    let app = app_with(manager.clone(), 500).unwrap();
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(realtime_sse_axum::Server::new().serve(plain, app, std::future::pending()));

    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, authority)
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends here: nothing to forward.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut upstream = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (port, manager)
}

async fn next(client: &mut RealtimeClient) -> Update {
    match tokio::time::timeout(DEADLINE, client.next()).await {
        Ok(Some(Ok(update))) => update,
        other => panic!("expected an update, got {other:?}"),
    }
}

/// Reads until an event arrives and returns its id and text (after `Connected`).
async fn next_event(client: &mut RealtimeClient) -> (String, Option<String>) {
    loop {
        match next(client).await {
            Update::Event(event) => return (event.id.clone(), event.text().map(str::to_owned)),
            Update::Connected { .. } => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_and_websocket_over_tls_trusting_an_added_root_resume_exactly() {
    let ca = authority("realtime test CA");
    for websocket in [false, true] {
        // A server per transport: the first client's release cannot blur the second's count.
        let (port, manager) = tls_demo(&ca).await;
        let builder = if websocket {
            RealtimeClient::websocket(format!("wss://localhost:{port}/ws"))
        } else {
            // A query already in the URL: the channel is appended to it.
            RealtimeClient::sse(format!("https://localhost:{port}/events?app=test"))
        };
        let mut client = builder
            .channel("a")
            .system_roots(false)
            .root_certificate_pem(ca.pem())
            // At least 1 s away after a cut: the event below is published meanwhile.
            .reconnect_delays(Duration::from_secs(2), Duration::from_secs(4))
            .build()
            .unwrap();
        assert!(matches!(next(&mut client).await, Update::Connected { .. }));
        let first = manager
            .publish(PublishRequest::new("a", "over TLS"))
            .await
            .unwrap();
        assert_eq!(
            next_event(&mut client).await,
            (first.id.to_token(), Some("over TLS".to_owned()))
        );
        // A cut, then an event published while the client is away: the resume over a new
        // TLS connection brings it.
        assert_eq!(manager.disconnect_all(), 1);
        assert!(matches!(
            next(&mut client).await,
            Update::Disconnected { .. }
        ));
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while manager.connection_count() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "still connected");
            tokio::time::sleep(Duration::from_millis(5)).await; // polling interval
        }
        let missed = manager
            .publish(PublishRequest::new("a", "while away"))
            .await
            .unwrap();
        assert_eq!(manager.connection_count(), 0, "published while away");
        assert_eq!(
            next_event(&mut client).await,
            (missed.id.to_token(), Some("while away".to_owned()))
        );
        assert_eq!(client.last_event_id("a"), Some(missed.id.to_token()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_connect_error_naming_why_and_is_retried() {
    let ca = authority("realtime test CA");
    let other = authority("some other CA");
    let (port, _manager) = tls_demo(&ca).await;
    let cases = [
        // Issued by a CA the client does not trust; a token in the query stays out of errors.
        (
            RealtimeClient::sse(format!("https://localhost:{port}/events?token=SECRET")),
            other.pem(),
            "UnknownIssuer",
        ),
        (
            RealtimeClient::websocket(format!("wss://localhost:{port}/ws?token=SECRET")),
            other.pem(),
            "UnknownIssuer",
        ),
        // A trusted CA, but the certificate names `localhost`, not this address.
        (
            RealtimeClient::sse(format!("https://127.0.0.1:{port}/events")),
            ca.pem(),
            "not valid for name",
        ),
        (
            RealtimeClient::websocket(format!("wss://127.0.0.1:{port}/ws")),
            ca.pem(),
            "not valid for name",
        ),
    ];
    for (builder, root, reason) in cases {
        let mut client = builder
            .channel("a")
            .system_roots(false)
            .root_certificate_pem(root)
            .reconnect_delays(Duration::from_millis(20), Duration::from_millis(40))
            .build()
            .unwrap();
        // Twice: the client goes on retrying (a renewed certificate needs no restart).
        for _ in 0..2 {
            match next(&mut client).await {
                Update::Disconnected {
                    error: error @ Error::Connect(_),
                    ..
                } => {
                    assert!(error.is_retryable());
                    assert!(error.to_string().contains(reason), "{error}");
                    assert!(!format!("{error} {error:?}").contains("SECRET"), "{error}");
                }
                other => panic!("expected a certificate error, got {other:?}"),
            }
        }
    }
}

#[test]
fn tls_without_any_trusted_root_or_with_a_bad_one_is_refused_at_build() {
    let error = RealtimeClient::sse("https://localhost/events")
        .channel("a")
        .system_roots(false)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidConfig {
                field: "root_certificate",
                ..
            }
        ),
        "{error}"
    );
    let error = RealtimeClient::websocket("wss://localhost/ws")
        .channel("a")
        .root_certificate_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidConfig {
                field: "root_certificate",
                ..
            }
        ),
        "{error}"
    );
    // Credentials in the URL would be sent by neither transport: refused, not dropped.
    for url in [
        "https://user:pw@localhost/events",
        "http://user:pw@localhost/events",
    ] {
        let error = RealtimeClient::sse(url).channel("a").build().unwrap_err();
        assert!(
            matches!(error, Error::InvalidConfig { field: "url", .. })
                && !error.to_string().contains("pw"),
            "{error}"
        );
    }
    // Plain URLs read no roots: a machine without a CA bundle still connects over ws/http.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    assert!(
        RealtimeClient::sse("http://localhost/events")
            .channel("a")
            .system_roots(false)
            .build()
            .is_ok()
    );
}
