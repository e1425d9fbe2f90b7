//! The endpoint over real sockets, read with an SSE client.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use realtime_core::sse::{Decoder, Frame};
use realtime_core::{
    Manager, ManagerConfig, NewEvent, Position, PublishRequest, ReadResult, Result, Store,
};
use realtime_sse_axum::{Authorize, Grant, Rejection, SseConfig, SseHandler};

const DEADLINE: Duration = Duration::from_secs(10);

/// Serves the endpoint with [`realtime_sse_axum::Server`] (the tests' clients ask for
/// `text/event-stream`, so their streams take its lean path).
async fn serve(handler: SseHandler) -> String {
    let app = axum::Router::new().route("/events", handler.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(realtime_sse_axum::Server::new().serve(listener, app, std::future::pending()));
    format!("http://{addr}/events")
}

fn manager(config: ManagerConfig) -> Manager {
    Manager::builder().config(config).build().unwrap()
}

struct SseClient {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: Decoder,
    frames: std::collections::VecDeque<Frame>,
}

impl SseClient {
    async fn open(
        url: &str,
        last_event_id: Option<&str>,
    ) -> (reqwest::Response, Option<SseClient>) {
        // As a browser's EventSource does; `Server` writes such streams itself.
        let mut request = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        if response.status() != 200 {
            return (response, None);
        }
        let headers = response.headers().clone();
        let body = Box::pin(response.bytes_stream());
        let mut stripped = reqwest::Response::from(http::Response::new(reqwest::Body::from("")));
        *stripped.headers_mut() = headers;
        (
            stripped,
            Some(SseClient {
                body,
                decoder: Decoder::new(),
                frames: Default::default(),
            }),
        )
    }

    /// A stream of `url` that has reached `: connected`.
    async fn connected(url: &str) -> SseClient {
        let (_, client) = SseClient::open(url, None).await;
        let mut client = client.expect("the stream opens");
        client.until_connected().await;
        client
    }

    /// The next frame, or `None` when the stream ended.
    async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            match tokio::time::timeout(DEADLINE, self.body.next()).await {
                Ok(Some(chunk)) => self.frames.extend(self.decoder.feed(&chunk.unwrap())),
                Ok(None) => return None,
                Err(_) => panic!("no frame within {DEADLINE:?}"),
            }
        }
    }

    /// The next frame with data (events and gaps), skipping comments and retry.
    async fn event(&mut self) -> Frame {
        loop {
            let frame = self.frame().await.expect("stream ended");
            if frame.data.is_some() {
                return frame;
            }
        }
    }

    async fn until_connected(&mut self) -> Vec<Frame> {
        let mut before = Vec::new();
        loop {
            let frame = self
                .frame()
                .await
                .expect("stream ended before `: connected`");
            if frame.comments.iter().any(|c| c == "connected") {
                return before;
            }
            before.push(frame);
        }
    }
}

async fn publish(manager: &Manager, channel: &str, data: &str) -> realtime_core::Event {
    manager
        .publish(PublishRequest::new(channel, data.to_owned()))
        .await
        .unwrap()
}

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

async fn error_of(url: &str) -> (u16, serde_json::Value, Option<String>) {
    let request = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream")
        .send();
    let response = tokio::time::timeout(DEADLINE, request)
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = tokio::time::timeout(DEADLINE, response.json())
        .await
        .expect("a JSON body, not a stream");
    (status, body.unwrap(), retry)
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    for (query, status, code) in [
        ("", 400, "invalid_channel"),
        ("?channel=", 400, "invalid_channel"),
        ("?channel=a%20b", 400, "invalid_channel"),
        ("?channel=a&channel=b", 400, "invalid_request"),
        ("?channel=a&tenant=t1", 400, "routing_not_allowed"),
    ] {
        let (got, body, _) = error_of(&format!("{url}{query}")).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn too_many_connections_is_503_with_retry_after() {
    let mut config = ManagerConfig::default();
    config.max_connections = 1;
    let manager = manager(config);
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    // Held open: it is the one connection the limit allows.
    let _first = SseClient::connected(&format!("{url}?channel=c")).await;
    let (status, body, retry) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str(), retry.as_deref()),
        (503, Some("too_many_connections"), Some("1"))
    );
}

struct BrokenStore;

#[async_trait::async_trait]
impl Store for BrokenStore {
    async fn append(&self, _: NewEvent) -> Result<realtime_core::Event> {
        Err(broken())
    }
    async fn read(&self, _: &str, _: Position, _: usize) -> Result<ReadResult> {
        Err(broken())
    }
    async fn head(&self, _: &str) -> Result<Position> {
        Err(broken())
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

fn broken() -> realtime_core::Error {
    realtime_core::BackendError::new(
        "test",
        realtime_core::BackendErrorKind::Connection,
        "store down",
    )
    .into()
}

#[tokio::test]
async fn an_unreachable_store_is_503_with_retry_after_and_releases_the_client() {
    let manager = Manager::builder()
        .store(Arc::new(BrokenStore))
        .build()
        .unwrap();
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let (status, body, retry_after) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str(), retry_after.as_deref()),
        (503, Some("backend_unavailable"), Some("1"))
    );
    assert_eq!(manager.connection_count(), 0);
    // A failure that retrying cannot fix stays a 500.
    let error = realtime_sse_axum::ApiError::from(realtime_core::Error::from(
        realtime_core::BackendError::new("test", realtime_core::BackendErrorKind::Decode, "bad"),
    ));
    assert_eq!((error.status.as_u16(), error.code), (500, "backend_error"));
}

#[tokio::test]
async fn the_hook_decides_the_tenant() {
    let manager = manager(ManagerConfig::default());
    let hook = Authorize::new(|parts: &http::request::Parts, _sub| {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        async move {
            match token.as_deref() {
                Some("Bearer tenant-a") => Ok(Grant {
                    tenant: Some("a".into()),
                    subject: None,
                }),
                Some(_) => Err(Rejection::forbidden("unknown token")),
                None => Err(Rejection::unauthorized("no token")),
            }
        }
    });
    let url = serve(
        SseHandler::builder(manager.clone())
            .authorize(hook)
            .build()
            .unwrap(),
    )
    .await;
    let (status, body, _) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let response = reqwest::Client::new()
        .get(format!("{url}?channel=c"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The query asks for tenant b; the hook says a, and a wins.
    let response = reqwest::Client::new()
        .get(format!("{url}?channel=c&tenant=b"))
        .header("authorization", "Bearer tenant-a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut client = SseClient {
        body: Box::pin(response.bytes_stream()),
        decoder: Decoder::new(),
        frames: Default::default(),
    };
    client.until_connected().await;
    for (tenant, data) in [("b", "for b"), ("a", "for a")] {
        let mut request = PublishRequest::new("c", data);
        request.tenant = Some(tenant.into());
        manager.publish(request).await.unwrap();
    }
    assert_eq!(
        client.event().await.data.as_deref(),
        Some("for a"),
        "tenant b's event must not arrive"
    );
}

#[tokio::test]
async fn query_routing_when_allowed() {
    let manager = manager(ManagerConfig::default());
    let mut config = SseConfig::default();
    config.routing_from_query = true;
    config.channel_param = "topic".into();
    let url = serve(
        SseHandler::builder(manager.clone())
            .config(config)
            .build()
            .unwrap(),
    )
    .await;
    let (_, client) = SseClient::open(&format!("{url}?topic=c&tenant=t1"), None).await;
    let mut client = client.unwrap();
    client.until_connected().await;
    for (tenant, data) in [("t2", "t2"), ("t1", "t1")] {
        let mut request = PublishRequest::new("c", data);
        request.tenant = Some(tenant.into());
        manager.publish(request).await.unwrap();
    }
    assert_eq!(client.event().await.data.as_deref(), Some("t1"));
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

/// The hook sees the channel a stream asks for and may refuse it: a JSON 403, no stream.
#[tokio::test]
async fn the_hook_sees_and_may_refuse_the_channel() {
    let manager = manager(ManagerConfig::default());
    let hook = Authorize::new(
        |_: &http::request::Parts, sub: &realtime_core::SubscribeRequest| {
            let allowed = sub.channels.iter().all(|c| c.channel.starts_with("mine-"));
            async move {
                if allowed {
                    Ok(Grant::default())
                } else {
                    Err(Rejection::forbidden("not your channel"))
                }
            }
        },
    );
    let url = serve(
        SseHandler::builder(manager.clone())
            .authorize(hook)
            .build()
            .unwrap(),
    )
    .await;
    let (status, body, _) = error_of(&format!("{url}?channel=secret")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(manager.connection_count(), 0);
    let response = reqwest::get(format!("{url}?channel=mine-a")).await.unwrap();
    assert_eq!(response.status(), 200);
}
