//! The endpoint over real sockets, read with an SSE client: replay, live delivery, resume,
//! heartbeats, release and shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use realtime_core::{ManagerConfig, PublishRequest};
use realtime_sse_axum::SseHandler;

#[tokio::test]
async fn replay_then_connected_then_live() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let first = publish(&manager, "orders", "one").await;
    publish(&manager, "orders", "two\nlines").await;
    publish(&manager, "orders", "three").await;
    let (response, client) = SseClient::open(
        &format!("{url}?channel=orders&last_event_id={}", first.id),
        None,
    )
    .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut client = client.unwrap();
    let before = client.until_connected().await;
    assert_eq!(before[0].retry, Some(3000), "the default retry comes first");
    let replay: Vec<_> = before[1..]
        .iter()
        .map(|f| f.data.clone().unwrap())
        .collect();
    assert_eq!(replay, vec!["two\nlines", "three"]);
    let mut request = PublishRequest::new("orders", "four");
    request.event_type = Some("created".into());
    request.retry_ms = Some(1500);
    let live = manager.publish(request).await.unwrap();
    let frame = client.event().await;
    assert_eq!(frame.id, Some(live.id.to_token()));
    assert_eq!(
        (frame.event.as_deref(), frame.retry, frame.data.as_deref()),
        (Some("created"), Some(1500), Some("four"))
    );
}

#[tokio::test]
async fn the_endpoint_streams_under_axum_serve_too() {
    let manager = manager(ManagerConfig::default());
    let handler = SseHandler::builder(manager.clone()).build().unwrap();
    let app = axum::Router::new().route("/events", handler.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let first = publish(&manager, "c", "one").await;
    publish(&manager, "c", "two").await;
    let url = format!("http://{addr}/events?channel=c");
    let (response, client) = SseClient::open(&url, Some(&first.id.to_token())).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut client = client.unwrap();
    let replay = client.until_connected().await;
    assert_eq!(replay.last().unwrap().data.as_deref(), Some("two"));
    publish(&manager, "c", "three").await;
    assert_eq!(client.event().await.data.as_deref(), Some("three"));
}

#[tokio::test]
async fn last_event_id_header_wins_over_the_query() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let e1 = publish(&manager, "c", "1").await;
    let e2 = publish(&manager, "c", "2").await;
    publish(&manager, "c", "3").await;
    let (_, client) = SseClient::open(
        &format!("{url}?channel=c&last_event_id={}", e1.id),
        Some(&e2.id.to_token()),
    )
    .await;
    let replay = client.unwrap().until_connected().await;
    let data: Vec<_> = replay.iter().filter_map(|f| f.data.clone()).collect();
    assert_eq!(
        data,
        vec!["3"],
        "replay must start after the header's position"
    );
}

/// An empty id means none, in the header as in the query: a live stream, no gap.
#[tokio::test]
async fn an_empty_last_event_id_means_live_only() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    publish(&manager, "c", "old").await;
    for (query, header) in [("&last_event_id=", None), ("", Some(""))] {
        let (_, client) = SseClient::open(&format!("{url}?channel=c{query}"), header).await;
        let replay = client.unwrap().until_connected().await;
        assert!(
            replay.iter().all(|f| f.event.is_none() && f.data.is_none()),
            "{query:?} {header:?}: nothing before `: connected`, got {replay:?}"
        );
    }
}

#[tokio::test]
async fn unknown_position_gets_the_gap_signal() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let head = publish(&manager, "c", "1").await;
    let (_, client) = SseClient::open(&format!("{url}?channel=c"), Some("not-a-position")).await;
    let mut client = client.unwrap();
    let before = client.until_connected().await;
    let gap = before
        .iter()
        .find(|f| f.event.as_deref() == Some("realtime-gap"))
        .expect("gap frame");
    assert_eq!(
        gap.id,
        Some(head.id.to_token()),
        "the gap's id is the head: a reconnect resumes there"
    );
    let body: serde_json::Value = serde_json::from_str(gap.data.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"channel": "c", "reason": "unknown_position", "head": head.id.to_token()})
    );
    assert_eq!(
        before.iter().filter(|f| f.data.is_some()).count(),
        1,
        "no events replayed after a gap"
    );
    let next = publish(&manager, "c", "2").await;
    assert_eq!(client.event().await.id, Some(next.id.to_token()));
}

#[tokio::test]
async fn closed_connections_release_their_clients() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(SseClient::connected(&format!("{url}?channel=c")).await);
    }
    assert_eq!(manager.connection_count(), 50);
    drop(clients);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while manager.connection_count() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} clients still held",
            manager.connection_count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(manager.channel_count(), 0);
}

#[tokio::test]
async fn heartbeats_keep_idle_streams_alive() {
    let manager = manager(ManagerConfig::default());
    let mut config = realtime_sse_axum::SseConfig::default();
    config.heartbeat_interval = Duration::from_millis(50);
    let handler = SseHandler::builder(manager.clone()).config(config);
    let url = serve(handler.build().unwrap()).await;
    let mut client = SseClient::connected(&format!("{url}?channel=c")).await;
    let heartbeat = client.frame().await.unwrap();
    assert_eq!(
        (heartbeat.comments, heartbeat.data),
        (vec![String::new()], None)
    );
}

#[tokio::test]
async fn shutdown_ends_every_stream() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(SseClient::connected(&format!("{url}?channel=c")).await);
    }
    manager.close().await.unwrap();
    for client in &mut clients {
        let last = client.frame().await.expect("a closing comment");
        assert_eq!(last.comments, vec!["closed: shutdown"]);
        assert!(client.frame().await.is_none(), "the stream must end");
    }
    let (status, body, _) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("shutting_down"))
    );
}
