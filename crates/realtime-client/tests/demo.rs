//! The client against the demo server (in-memory store and bus) and against hostile servers.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{DEADLINE, next, next_event};
use futures_util::StreamExt;
use realtime_client::{DataFormat, Error, RealtimeClient, Update};
use realtime_core::{Manager, PublishRequest};
use realtime_demo::{Options, app_with, manager};

/// The demo on a free port: its base address (`127.0.0.1:PORT`) and manager.
async fn demo() -> (String, Manager) {
    let options = Options::default();
    let manager = manager(&options).await.unwrap();
    let app = app_with(manager.clone(), 500).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(realtime_sse_axum::Server::new().serve(listener, app, std::future::pending()));
    (addr.to_string(), manager)
}

async fn publish(manager: &Manager, request: PublishRequest) -> String {
    manager.publish(request).await.unwrap().id.to_token()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_resumes_every_channel_exactly_after_a_cut() {
    let (addr, manager) = demo().await;
    let mut client = RealtimeClient::websocket(format!("ws://{addr}/ws"))
        .channel("a")
        .channel("b")
        // At least 1 s away after a cut: the events below are published meanwhile.
        .reconnect_delays(Duration::from_secs(2), Duration::from_secs(4))
        .build()
        .unwrap();
    assert!(matches!(
        next(&mut client).await,
        Update::Connected { client_id: Some(_) }
    ));
    let a1 = publish(&manager, PublishRequest::new("a", "a 1")).await;
    let json = PublishRequest::json("b", &serde_json::json!({"n": 1})).unwrap();
    let b1 = publish(&manager, json).await;
    let bytes = publish(&manager, PublishRequest::binary("b", vec![0u8, b'\n', 255])).await;
    let event = next_event(&mut client).await;
    assert_eq!(
        (event.channel.as_str(), event.id.as_str(), event.text()),
        ("a", a1.as_str(), Some("a 1"))
    );
    let event = next_event(&mut client).await;
    assert_eq!(
        (event.id.as_str(), event.format),
        (b1.as_str(), DataFormat::Json)
    );
    assert_eq!(
        event.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"n": 1})
    );
    let event = next_event(&mut client).await;
    assert_eq!(
        (event.id.as_str(), event.format),
        (bytes.as_str(), DataFormat::Binary)
    );
    assert_eq!(&event.data[..], &[0u8, b'\n', 255]);

    assert_eq!(manager.disconnect_all(), 1);
    assert!(matches!(
        next(&mut client).await,
        Update::Disconnected { .. }
    ));
    // The server lets the session's client go once its close frame is out: wait for that.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while manager.connection_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut client is still connected"
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // polling interval
    }
    let missed = [
        publish(&manager, PublishRequest::new("b", "b 2")).await,
        publish(&manager, PublishRequest::new("a", "a 2")).await,
    ];
    assert_eq!(
        manager.connection_count(),
        0,
        "published while the client is away"
    );
    // The replay comes first, then `Connected`: live from there.
    let mut resumed = vec![
        next_event(&mut client).await.id,
        next_event(&mut client).await.id,
    ];
    assert!(matches!(next(&mut client).await, Update::Connected { .. }));
    resumed.sort();
    let mut expected = missed.to_vec();
    expected.sort();
    assert_eq!(resumed, expected, "exactly the missed events, once");
    assert_eq!(client.last_event_id("a"), Some(missed[1].clone()));
    assert_eq!(client.last_event_id("b"), Some(missed[0].clone()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_resume_id_is_a_gap_and_sse_resumes_after_a_cut() {
    let (addr, manager) = demo().await;
    let head = publish(&manager, PublishRequest::new("s", "before")).await;
    let mut client = RealtimeClient::sse(format!("http://{addr}/events"))
        .resume("s", "not-a-position")
        .reconnect_delays(Duration::from_secs(2), Duration::from_secs(4))
        .build()
        .unwrap();
    match next(&mut client).await {
        Update::Gap {
            channel,
            reason,
            head: at,
        } => {
            assert_eq!(
                (channel.as_str(), reason.as_str(), at),
                ("s", "unknown_position", head.clone())
            );
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    assert!(matches!(
        next(&mut client).await,
        Update::Connected { client_id: Some(_) }
    ));
    assert_eq!(client.last_event_id("s"), Some(head));
    let live = publish(
        &manager,
        PublishRequest::new("s", "live").event_type("note"),
    )
    .await;
    let event = next_event(&mut client).await;
    assert_eq!(
        (event.id.as_str(), event.event_type.as_str()),
        (live.as_str(), "note")
    );

    manager.disconnect_all();
    assert!(matches!(
        next(&mut client).await,
        Update::Disconnected { .. }
    ));
    let missed = publish(&manager, PublishRequest::new("s", "missed")).await;
    assert_eq!(
        next_event(&mut client).await.id,
        missed,
        "resumed with Last-Event-ID"
    );
    assert!(matches!(next(&mut client).await, Update::Connected { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_reconnecting_cannot_fix_ends_the_stream() {
    let (addr, _manager) = demo().await;
    // A channel name the server refuses is caught before connecting.
    let bad = RealtimeClient::websocket(format!("ws://{addr}/ws"))
        .channel("a b")
        .build();
    assert!(matches!(
        bad,
        Err(Error::InvalidConfig {
            field: "channels",
            ..
        })
    ));
    let mut client = RealtimeClient::sse(format!("http://{addr}/nowhere"))
        .channel("c")
        .build()
        .unwrap();
    match tokio::time::timeout(DEADLINE, client.next()).await {
        Ok(Some(Err(Error::Refused { status: 404, .. }))) => {}
        other => panic!("expected a final 404, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(DEADLINE, client.next())
            .await
            .unwrap()
            .is_none()
    );
}
