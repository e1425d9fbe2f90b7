//! Helpers of the SSE endpoint's socket tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use futures_util::StreamExt;
use realtime_core::sse::{Decoder, Frame};
use realtime_core::{Manager, ManagerConfig, PublishRequest};
use realtime_sse_axum::SseHandler;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// Serves the endpoint with [`realtime_sse_axum::Server`] (the tests' clients ask for
/// `text/event-stream`, so their streams take its lean path).
pub async fn serve(handler: SseHandler) -> String {
    let app = axum::Router::new().route("/events", handler.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(realtime_sse_axum::Server::new().serve(listener, app, std::future::pending()));
    format!("http://{addr}/events")
}

pub fn manager(config: ManagerConfig) -> Manager {
    Manager::builder().config(config).build().unwrap()
}

pub struct SseClient {
    pub body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    pub decoder: Decoder,
    pub frames: std::collections::VecDeque<Frame>,
}

impl SseClient {
    pub async fn open(
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
    pub async fn connected(url: &str) -> SseClient {
        let (_, client) = SseClient::open(url, None).await;
        let mut client = client.expect("the stream opens");
        client.until_connected().await;
        client
    }

    /// The next frame, or `None` when the stream ended.
    pub async fn frame(&mut self) -> Option<Frame> {
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
    pub async fn event(&mut self) -> Frame {
        loop {
            let frame = self.frame().await.expect("stream ended");
            if frame.data.is_some() {
                return frame;
            }
        }
    }

    pub async fn until_connected(&mut self) -> Vec<Frame> {
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

pub async fn publish(manager: &Manager, channel: &str, data: &str) -> realtime_core::Event {
    manager
        .publish(PublishRequest::new(channel, data.to_owned()))
        .await
        .unwrap()
}

pub async fn error_of(url: &str) -> (u16, serde_json::Value, Option<String>) {
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
