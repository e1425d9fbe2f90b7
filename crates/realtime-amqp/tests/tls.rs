//! `amqps://` against a RabbitMQ node of the test's own (its own node name, ports, cookie,
//! configuration and data directory; the shared node on 5672 is never touched): a TLS-only
//! listener whose certificate a CA generated here signed, PLAIN over TLS and the `EXTERNAL`
//! mechanism with a client certificate. The node starts in 10–20 s, so one test covers
//! every case.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use realtime_amqp::{AmqpBus, AmqpBusConfig, AmqpTls};
use realtime_conformance::restart::OwnServer;
use realtime_conformance::tls::{Issued, TestCa};
use realtime_core::{BackendErrorKind, Error};

/// The broker's one user: the client certificate's common name (for `EXTERNAL`) with a
/// password (for `PLAIN`).
const USER: &str = "rt-client";
const PASSWORD: &str = "amqp-pa55-that-must-never-show";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap()
}

/// A RabbitMQ node listening only for TLS on a free port, in `dir`.
fn tls_node(dir: &Path, ca: &TestCa) -> OwnServer {
    let (certificate, key) = ca.server(&["127.0.0.1"]).write(dir, "server");
    let ca_file = ca.write(dir);
    for sub in ["home", "mnesia", "log", "conf.d"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(
        dir.join("enabled_plugins"),
        "[rabbitmq_auth_mechanism_ssl].\n",
    )
    .unwrap();
    std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
    let dir = dir.to_path_buf();
    let node = format!(
        "rt-tls-{:08x}@localhost",
        realtime_core::Epoch::fresh().0 as u32
    );
    OwnServer::start(move |port| {
        let config = dir.join("rabbitmq.conf");
        std::fs::write(
            &config,
            format!(
                "listeners.tcp = none\n\
                 listeners.ssl.default = 127.0.0.1:{port}\n\
                 ssl_options.cacertfile = {}\n\
                 ssl_options.certfile = {}\n\
                 ssl_options.keyfile = {}\n\
                 ssl_options.verify = verify_peer\n\
                 ssl_options.fail_if_no_peer_cert = false\n\
                 auth_mechanisms.1 = EXTERNAL\n\
                 auth_mechanisms.2 = PLAIN\n\
                 ssl_cert_login_from = common_name\n\
                 default_user = {USER}\n\
                 default_pass = {PASSWORD}\n\
                 log.console = false\n",
                ca_file.display(),
                certificate.display(),
                key.display()
            ),
        )
        .unwrap();
        let path = |name: &str| dir.join(name);
        let mut command = std::process::Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        command
            // A cookie of its own: the node can never talk to the shared one.
            .env("HOME", path("home"))
            .env("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf"))
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("RABBITMQ_CONFIG_FILE", &config)
            .env("RABBITMQ_CONFIG_FILES", path("conf.d"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("rabbit.pid"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            );
        command
    })
}

fn config(url: String, tls: AmqpTls) -> AmqpBusConfig {
    let mut config = common::config(
        &url,
        &format!("rt-tls-{:016x}", realtime_core::Epoch::fresh().0),
    );
    config.connect_timeout = Duration::from_secs(5);
    config.tls = tls;
    config
}

fn trusting(ca: &TestCa, client: Option<&Issued>) -> AmqpTls {
    let mut tls = AmqpTls::default();
    tls.root_certificate_pem = Some(ca.pem());
    if let Some(client) = client {
        tls.client_certificate_pem = Some(client.certificate_pem.clone().into_bytes());
        tls.client_key_pem = Some(client.key_pem.clone().into_bytes());
    }
    tls
}

/// Two instances on `config` exchange an event.
async fn exchange(config: AmqpBusConfig) {
    let a = AmqpBus::connect(config.clone()).await.unwrap();
    let b = AmqpBus::connect(config).await.unwrap();
    realtime_conformance::exchange::exchange(Arc::new(a), Arc::new(b), None).await;
}

async fn refused(config: AmqpBusConfig) -> Error {
    match AmqpBus::connect(config).await {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(error) => error,
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rt-amqp-tls-{:016x}",
        realtime_core::Epoch::fresh().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_a_private_ca_plain_and_external_authentication() {
    let dir = scratch();
    let ca = TestCa::new("amqp test CA");
    let node = tls_node(&dir, &ca);
    let port = node.port;
    let client = ca.client(USER);

    // PLAIN over TLS, trusting the private CA.
    let plain = format!("amqps://{USER}:{PASSWORD}@127.0.0.1:{port}/%2f");
    exchange(config(plain.clone(), trusting(&ca, None))).await;

    // EXTERNAL: the broker takes the user from the client certificate; no password sent.
    let external = format!("amqps://127.0.0.1:{port}/%2f?auth_mechanism=external");
    exchange(config(external, trusting(&ca, Some(&client)))).await;

    // A broker certificate from a CA the bus does not trust: refused, retryable, saying why.
    let error = refused(config(
        plain.clone(),
        trusting(&TestCa::new("another CA"), None),
    ))
    .await;
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");

    // A wrong password: not retryable, and never shown.
    let wrong = format!("amqps://{USER}:wrong-pa55@127.0.0.1:{port}/%2f");
    let error = refused(config(wrong, trusting(&ca, None))).await;
    match &error {
        Error::Backend(backend) => assert_eq!(backend.kind(), BackendErrorKind::Config, "{error}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("wrong-pa55") && !shown.contains(PASSWORD),
        "{shown}"
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_settings_need_an_amqps_url_and_external_a_certificate() {
    let mut config = AmqpBusConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f");
    config.tls.root_certificate_pem = Some("-----BEGIN CERTIFICATE-----".into());
    assert!(matches!(
        config.validate(),
        Err(Error::InvalidConfig { field: "tls", .. })
    ));
    let config = AmqpBusConfig::new("amqps://127.0.0.1/%2f?auth_mechanism=external");
    assert!(matches!(
        config.validate(),
        Err(Error::InvalidConfig {
            field: "tls.client_certificate_pem",
            ..
        })
    ));
    let printed = format!("{:?}", {
        let mut config = AmqpBusConfig::new("amqps://u:s3cret@h/%2f");
        config.tls.client_certificate_pem = Some(b"cert".to_vec());
        config.tls.client_key_pem = Some(b"k3y-bytes".to_vec());
        config
    });
    assert!(
        !printed.contains("s3cret") && !printed.contains("k3y-bytes"),
        "{printed}"
    );
}
