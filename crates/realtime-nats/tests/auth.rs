//! Production connection modes against nats-server processes of the test's own: TLS with a
//! private CA (and client certificates), user and password, token, NKey, and an operator-mode
//! server with a `.creds` file (JWTs signed here, as `nsc` would). Wrong credentials are a
//! configuration error that shows no secret.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use realtime_conformance::restart::OwnServer;
use realtime_conformance::tls::TestCa;
use realtime_core::{BackendErrorKind, Error};
use realtime_nats::{NatsBus, NatsBusConfig, NatsCredentials, NatsTls};

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rt-nats-auth-{:016x}",
        realtime_core::Epoch::fresh().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A nats-server of the test's own on a free port with `args`.
fn server(args: Vec<String>) -> OwnServer {
    OwnServer::start(move |port| {
        let mut command = std::process::Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(&args);
        command
    })
}

fn with_config_file(dir: &Path, text: &str) -> OwnServer {
    let file = dir.join("server.conf");
    std::fs::write(&file, text).unwrap();
    server(vec!["-c".into(), file.to_string_lossy().into_owned()])
}

fn config(url: String, credentials: NatsCredentials) -> NatsBusConfig {
    let mut config = common::config(
        &url,
        &format!("rt-auth.{:016x}.", realtime_core::Epoch::fresh().0),
    );
    config.credentials = credentials;
    config
}

/// Two instances on `config` exchange an event.
async fn exchange(config: NatsBusConfig) {
    let a = NatsBus::connect(config.clone()).await.unwrap();
    let b = NatsBus::connect(config).await.unwrap();
    realtime_conformance::exchange::exchange(Arc::new(a), Arc::new(b), None).await;
}

async fn refused(config: NatsBusConfig) -> Error {
    match NatsBus::connect(config).await {
        Ok(_) => panic!("connected, but should have been refused"),
        Err(error) => error,
    }
}

fn assert_config_error_without(error: &Error, secret: &str) {
    match error {
        Error::Backend(backend) => assert_eq!(backend.kind(), BackendErrorKind::Config, "{error}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(secret), "the secret shows: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca_and_client_certificates() {
    let dir = scratch();
    let ca = TestCa::new("nats test CA");
    let (certificate, key) = ca.server(&["127.0.0.1"]).write(&dir, "server");
    let ca_file = ca.write(&dir);
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let server = server(vec![
        "--tlsverify".into(),
        "--tlscert".into(),
        path(&certificate),
        "--tlskey".into(),
        path(&key),
        "--tlscacert".into(),
        path(&ca_file),
    ]);
    let client = ca.client("realtime");
    let mut tls = NatsTls::with_root_certificate(ca.pem());
    tls.client_certificate_pem = Some(client.certificate_pem.clone().into_bytes());
    tls.client_key_pem = Some(client.key_pem.clone().into_bytes());
    let url = format!("tls://127.0.0.1:{}", server.port);
    let mut good = config(url.clone(), NatsCredentials::None);
    good.tls = Some(tls.clone());
    exchange(good.clone()).await;

    // Another CA's certificate: refused, retryable, saying why.
    let mut stranger = good.clone();
    let mut other = tls.clone();
    other.root_certificate_pem = Some(TestCa::new("another CA").pem().into_bytes());
    stranger.tls = Some(other);
    let error = refused(stranger).await;
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");

    // No client certificate for a server that verifies clients.
    let mut anonymous = good;
    anonymous.tls = Some(NatsTls::with_root_certificate(ca.pem()));
    let error = refused(anonymous).await;
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_in_the_config_or_the_url_and_a_token() {
    let server_with_password = server(
        ["--user", "alice", "--pass", "s3cret-pass"]
            .map(String::from)
            .to_vec(),
    );
    let port = server_with_password.port;
    let credentials = NatsCredentials::UserPassword {
        user: "alice".into(),
        password: "s3cret-pass".into(),
    };
    exchange(config(format!("nats://127.0.0.1:{port}"), credentials)).await;
    // async-nats itself ignores a URL's user part; the bus reads it.
    exchange(config(
        format!("nats://alice:s3cret-pass@127.0.0.1:{port}"),
        NatsCredentials::None,
    ))
    .await;
    let wrong = NatsCredentials::UserPassword {
        user: "alice".into(),
        password: "wrong-pass".into(),
    };
    let error = refused(config(format!("nats://127.0.0.1:{port}"), wrong)).await;
    assert_config_error_without(&error, "wrong-pass");

    let server_with_token = server(["--auth", "t0ken-value"].map(String::from).to_vec());
    let url = format!("nats://127.0.0.1:{}", server_with_token.port);
    exchange(config(
        url.clone(),
        NatsCredentials::Token("t0ken-value".into()),
    ))
    .await;
    let error = refused(config(url, NatsCredentials::Token("other-t0ken".into()))).await;
    assert_config_error_without(&error, "other-t0ken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_user() {
    let user = nkeys::KeyPair::new_user();
    let dir = scratch();
    let server = with_config_file(
        &dir,
        &format!(
            "authorization {{\n  users = [ {{ nkey: {} }} ]\n}}\n",
            user.public_key()
        ),
    );
    let url = format!("nats://127.0.0.1:{}", server.port);
    exchange(config(
        url.clone(),
        NatsCredentials::NKey(user.seed().unwrap()),
    ))
    .await;
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let error = refused(config(url, NatsCredentials::NKey(stranger.clone()))).await;
    assert_config_error_without(&error, &stranger);
}

/// A JWT as nats-server 2.9 accepts it: header, claims, ed25519 signature by `issuer`.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, nats: serde_json::Value) -> String {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{subject}-{iat}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": "realtime-test",
        "sub": subject,
        "nats": nats,
    });
    let header = B64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let input = format!("{header}.{}", B64.encode(claims.to_string()));
    let signature = B64.encode(issuer.sign(input.as_bytes()).unwrap());
    format!("{input}.{signature}")
}

fn account_jwt(operator: &nkeys::KeyPair, account: &nkeys::KeyPair) -> String {
    let limits = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    jwt(
        operator,
        &account.public_key(),
        serde_json::json!({"limits": limits, "default_permissions": {"pub": {}, "sub": {}},
                           "type": "account", "version": 2}),
    )
}

/// A `.creds` file for a new user of `account`, laid out as `nsc` writes it.
fn creds(account: &nkeys::KeyPair) -> String {
    let user = nkeys::KeyPair::new_user();
    let user_jwt = jwt(
        account,
        &user.public_key(),
        serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                           "type": "user", "version": 2}),
    );
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        user.seed().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creds_file_on_an_operator_mode_server() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let dir = scratch();
    let server = with_config_file(
        &dir,
        &format!(
            "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n}}\n",
            account.public_key(),
            account_jwt(&operator, &account)
        ),
    );
    let url = format!("nats://127.0.0.1:{}", server.port);
    let text = creds(&account);
    exchange(config(url.clone(), NatsCredentials::Creds(text.clone()))).await;
    let file = dir.join("user.creds");
    std::fs::write(&file, &text).unwrap();
    exchange(config(url.clone(), NatsCredentials::CredsFile(file))).await;

    // A user of an account the server does not know.
    let unknown = creds(&nkeys::KeyPair::new_account());
    let error = refused(config(url, NatsCredentials::Creds(unknown.clone()))).await;
    let seed = unknown
        .lines()
        .find(|line| line.starts_with("SU"))
        .unwrap()
        .to_owned();
    assert_config_error_without(&error, &seed);
}
