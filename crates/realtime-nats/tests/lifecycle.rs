//! What the NATS bus promises beyond the conformance suite: channel names NATS subjects
//! cannot carry stay apart, an event over the server's limit is refused, a server that is
//! not there is a clear error.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use realtime_core::frame::Origin;
use realtime_core::{Bus, BusMessage, Epoch, Error, NewEvent, Position};
use realtime_nats::{NatsBus, NatsBusConfig};

fn prefix() -> String {
    format!("rt-test.{:016x}.", Epoch::fresh().0)
}

fn event(channel: &str, data: impl Into<bytes::Bytes>) -> realtime_core::Event {
    NewEvent::new(channel, data).into_event(Position {
        epoch: Epoch(1),
        offset: 1,
    })
}

async fn next(subscription: &mut realtime_core::BusSubscription) -> Option<BusMessage> {
    tokio::time::timeout(Duration::from_millis(300), subscription.recv())
        .await
        .ok()
        .flatten()
}

/// `a.b`, `a~2Eb`, `a*` and `a b` are four channels on four subjects: none receives
/// another's events (a `.` kept as is would make `a.b` two tokens, `*` a wildcard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_with_subject_syntax_stay_apart() {
    let config = common::config(&common::url(), &prefix());
    let a = NatsBus::connect(config.clone()).await.unwrap();
    let b = NatsBus::connect(config).await.unwrap();
    let channels = ["a.b", "a~2Eb", "a*", "a b", "a.>"];
    let mut subscriptions = Vec::new();
    for channel in channels {
        subscriptions.push(b.subscribe(channel).await.unwrap());
    }
    for channel in channels {
        a.publish(&event(channel, channel.to_owned()), Origin::fresh())
            .await
            .unwrap();
    }
    for (channel, subscription) in channels.iter().zip(&mut subscriptions) {
        match next(subscription).await {
            Some(BusMessage::Event(event, _)) => {
                assert_eq!(event.channel, *channel);
                assert_eq!(&event.data[..], channel.as_bytes());
            }
            other => panic!("{channel:?}: {other:?}"),
        }
        assert!(
            next(subscription).await.is_none(),
            "{channel:?}: only its own"
        );
    }
    assert_eq!(
        b.channel_of(&b.subject_of("a.b").unwrap()).as_deref(),
        Some("a.b")
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A wildcard subscriber on the deployment's subjects (an operator watching with the CLI)
/// does not slow publishing down: the bus's round trip does not pass through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_watcher_does_not_stall_publishing() {
    let config = common::config(&common::url(), &prefix());
    let watcher = NatsBus::connect(config.clone()).await.unwrap();
    let publisher = NatsBus::connect(config.clone()).await.unwrap();
    // A raw client subscribed to everything.
    let raw = async_nats_client(&common::url()).await;
    let _everything = raw.subscribe(">").await.unwrap();
    let mut own = watcher.subscribe("c").await.unwrap();
    let started = Instant::now();
    publisher
        .publish(&event("c", "x"), Origin::fresh())
        .await
        .unwrap();
    assert!(started.elapsed() < config.operation_timeout);
    assert!(matches!(next(&mut own).await, Some(BusMessage::Event(..))));
}

async fn async_nats_client(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_servers_limit_is_refused_not_truncated() {
    let bus = NatsBus::connect(common::config(&common::url(), &prefix()))
        .await
        .unwrap();
    let refused = bus
        .publish(&event("c", "x".repeat(2 << 20)), Origin::fresh())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::InvalidRequest { field: "data", .. }),
        "{refused}"
    );
    bus.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_at_start_is_a_clear_retryable_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = NatsBusConfig::new(format!("nats://127.0.0.1:{port}"));
    config.connect_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let error = NatsBus::connect(config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("is nats-server running"),
        "{error}"
    );
}

/// A nats-server of the test's own with users and permissions: `app` may use `rt.>` but
/// not subscribe to `rt.secret` nor publish to `rt.readonly`; `nosync` lacks the bus's
/// marker subjects.
fn server_with_permissions() -> realtime_conformance::restart::OwnServer {
    realtime_conformance::restart::OwnServer::start(|port| {
        let config = std::env::temp_dir().join(format!("realtime-nats-permissions-{port}.conf"));
        let text = format!(
            r#"listen: "127.0.0.1:{port}"
authorization {{
  users = [
    {{ user: app, password: pw, permissions: {{
        publish: {{ allow: ["rt.>", "_REALTIME_SYNC.>"], deny: ["rt.readonly"] }},
        subscribe: {{ allow: ["rt.>", "_REALTIME_SYNC.>"], deny: ["rt.secret"] }} }} }},
    {{ user: nosync, password: pw, permissions: {{ publish: ["rt.>"], subscribe: ["rt.>"] }} }}
  ]
}}
"#
        );
        std::fs::write(&config, text).unwrap();
        let mut command = std::process::Command::new("nats-server");
        command.arg("-c").arg(config);
        command
    })
}

fn as_user(port: u16, user: &str) -> NatsBusConfig {
    let mut config = common::config(&format!("nats://127.0.0.1:{port}"), "rt.");
    config.credentials = realtime_nats::NatsCredentials::UserPassword {
        user: user.into(),
        password: "pw".into(),
    };
    config
}

/// A subscription the server refuses reaches its subscribers as `Interrupted` (not a
/// silent subscription that never delivers); a bus refused its marker subject does not
/// connect, and says which permission it needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_permissions_are_said_not_silent() {
    let server = server_with_permissions();
    let bus = NatsBus::connect(as_user(server.port, "app")).await.unwrap();
    let mut allowed = bus.subscribe("open").await.unwrap();
    let mut refused = bus.subscribe("secret").await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), refused.recv()).await {
        Ok(Some(BusMessage::Interrupted)) => {}
        other => panic!("a refused subscription is told: {other:?}"),
    }
    bus.publish(&event("open", "x"), Origin::fresh())
        .await
        .unwrap();
    assert!(matches!(
        next(&mut allowed).await,
        Some(BusMessage::Event(..))
    ));
    // The server refuses a publish after the fact: each fails (they were only logged, and
    // the caller told they were sent). The first may beat its refusal through the client
    // (two tasks hand them over); from the refusal on, every one fails.
    let mut refusals = Vec::new();
    for n in 0..20 {
        if let Err(error) = bus
            .publish(&event("readonly", format!("{n}")), Origin::fresh())
            .await
        {
            assert!(!error.is_retryable(), "{error}");
            assert!(
                error
                    .to_string()
                    .contains("refused this bus permission to publish to rt.readonly"),
                "{error}"
            );
            refusals.push(n);
        }
    }
    assert!(
        refusals == (0..20).collect::<Vec<_>>() || refusals == (1..20).collect::<Vec<_>>(),
        "refused: {refusals:?}"
    );
    bus.publish(&event("open", "y"), Origin::fresh())
        .await
        .unwrap();
    let error = NatsBus::connect(as_user(server.port, "nosync"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("_REALTIME_SYNC.>"), "{error}");
    assert!(!error.to_string().contains("pw"), "{error}");
}
