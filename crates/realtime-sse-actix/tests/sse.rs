//! The endpoint on a real actix-web server, read with an SSE client: replay then live, the
//! gap signal, JSON errors, the connection limit and shutdown.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use actix_web::{App, HttpServer};
use futures_util::StreamExt;
use realtime_core::sse::{Decoder, Frame};
use realtime_core::{Manager, ManagerConfig, PublishRequest};
use realtime_sse_actix::SseHandler;

const DEADLINE: Duration = Duration::from_secs(10);

/// Serves `handler` on an actix-web server on a free port; returns the endpoint's URL.
fn serve(handler: SseHandler) -> String {
    let server = HttpServer::new(move || App::new().service(handler.resource("/events")))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{addr}/events")
}

struct Stream {
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: Decoder,
    frames: std::collections::VecDeque<Frame>,
}

impl Stream {
    async fn open(url: &str, last_event_id: Option<&str>) -> (reqwest::header::HeaderMap, Stream) {
        let mut request = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let stream = Stream {
            body: Box::pin(response.bytes_stream()),
            decoder: Decoder::new(),
            frames: Default::default(),
        };
        (headers, stream)
    }

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

    /// The frames before `: connected`.
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

    async fn event(&mut self) -> Frame {
        loop {
            let frame = self.frame().await.expect("stream ended");
            if frame.data.is_some() {
                return frame;
            }
        }
    }
}

async fn error_of(url: &str) -> (u16, serde_json::Value, Option<String>) {
    let response = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, response.json().await.unwrap(), retry)
}

fn manager(config: ManagerConfig) -> Manager {
    Manager::builder().config(config).build().unwrap()
}

async fn publish(manager: &Manager, channel: &str, data: &str) -> realtime_core::Event {
    manager
        .publish(PublishRequest::new(channel, data.to_owned()))
        .await
        .unwrap()
}

#[actix_web::test]
async fn replay_then_connected_then_live() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap());
    let first = publish(&manager, "orders", "one").await;
    publish(&manager, "orders", "two\nlines").await;
    let (headers, mut stream) =
        Stream::open(&format!("{url}?channel=orders"), Some(&first.id.to_token())).await;
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    let before = stream.until_connected().await;
    assert_eq!(before[0].retry, Some(3000), "the default retry comes first");
    assert_eq!(before[1].data.as_deref(), Some("two\nlines"));
    assert_eq!(before.len(), 2, "exactly the missed event");
    let live = publish(&manager, "orders", "three").await;
    let frame = stream.event().await;
    assert_eq!(
        (frame.id, frame.data.as_deref()),
        (Some(live.id.to_token()), Some("three"))
    );
}

#[actix_web::test]
async fn an_unknown_id_gets_the_gap_signal_then_live_events() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap());
    let head = publish(&manager, "c", "one").await;
    let (_, mut stream) = Stream::open(&format!("{url}?channel=c"), Some("not-a-position")).await;
    let before = stream.until_connected().await;
    let gap = before
        .iter()
        .find(|f| f.event.as_deref() == Some("realtime-gap"));
    let gap: serde_json::Value =
        serde_json::from_str(gap.unwrap().data.as_deref().unwrap()).unwrap();
    assert_eq!(gap["reason"], "unknown_position");
    assert_eq!(gap["head"], head.id.to_token());
    publish(&manager, "c", "two").await;
    assert_eq!(stream.event().await.data.as_deref(), Some("two"));
}

#[actix_web::test]
async fn bad_requests_and_a_full_instance_get_json_errors() {
    let mut config = ManagerConfig::default();
    config.max_connections = 1;
    let manager = manager(config);
    // actix-web notices a client that went away when it next writes to it: a heartbeat.
    let mut sse = realtime_http::SseConfig::default();
    sse.heartbeat_interval = Duration::from_millis(100);
    let handler = SseHandler::builder(manager.clone()).config(sse);
    let url = serve(handler.build().unwrap());
    let (status, body, _) = error_of(&url).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_channel")),
        "no channel"
    );
    let (status, body, _) = error_of(&format!("{url}?channel=a&channel=b")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body, _) = error_of(&format!("{url}?channel=bad*name")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_channel"))
    );
    let (_, mut held) = Stream::open(&format!("{url}?channel=c"), None).await;
    held.until_connected().await;
    let (status, body, retry) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str(), retry.as_deref()),
        (503, Some("too_many_connections"), Some("1"))
    );
    drop(held);
    // The slot comes back once the server sees the client gone.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while manager.connection_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot is released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, mut again) = Stream::open(&format!("{url}?channel=c"), None).await;
    again.until_connected().await;
}

#[actix_web::test]
async fn shutdown_ends_the_stream() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap());
    let (_, mut stream) = Stream::open(&format!("{url}?channel=c"), None).await;
    stream.until_connected().await;
    manager.close().await.unwrap();
    while let Some(frame) = stream.frame().await {
        assert!(frame.data.is_none() || frame.event.as_deref() != Some("message"));
    }
}
