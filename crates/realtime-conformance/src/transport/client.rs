//! The suite's SSE and WebSocket clients.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_core::sse::{Decoder, Frame};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// How long any expected message may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// An open event stream.
pub(crate) struct SseStream {
    pub(crate) headers: reqwest::header::HeaderMap,
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: Decoder,
    frames: VecDeque<Frame>,
}

/// A GET as a browser's `EventSource` sends it: an event stream, or the refusal's status,
/// JSON body and `Retry-After`.
pub(crate) async fn open_sse(
    url: &str,
    last_event_id: Option<&str>,
) -> Result<SseStream, (u16, Value, Option<String>)> {
    let mut request = reqwest::Client::new()
        .get(url)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = tokio::time::timeout(DEADLINE, request.send())
        .await
        .unwrap_or_else(|_| panic!("{url}: no answer within {DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    if status != 200 {
        let retry = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.json().await.unwrap_or(Value::Null);
        return Err((status, body, retry));
    }
    Ok(SseStream {
        headers: response.headers().clone(),
        body: Box::pin(response.bytes_stream()),
        decoder: Decoder::new(),
        frames: VecDeque::new(),
    })
}

impl SseStream {
    /// The next frame; `None` once the stream ended.
    pub(crate) async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            match tokio::time::timeout(DEADLINE, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.frames.extend(self.decoder.feed(&chunk)),
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("no SSE frame within {DEADLINE:?}"),
            }
        }
    }

    /// The frames before `: connected`.
    pub(crate) async fn until_connected(&mut self) -> Vec<Frame> {
        let mut before = Vec::new();
        loop {
            let frame = self
                .frame()
                .await
                .unwrap_or_else(|| panic!("the stream ended before `: connected`"));
            if frame.comments.iter().any(|c| c == "connected") {
                return before;
            }
            before.push(frame);
        }
    }

    /// The next frame with data (an event or a gap).
    pub(crate) async fn event(&mut self) -> Frame {
        loop {
            let frame = self
                .frame()
                .await
                .unwrap_or_else(|| panic!("the stream ended"));
            if frame.data.is_some() {
                return frame;
            }
        }
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket with `origin`: the socket, or the refusal's status and JSON body.
pub(crate) async fn open_ws(url: &str, origin: Option<&str>) -> Result<Socket, (u16, Value)> {
    let mut request = url
        .into_client_request()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    if let Some(origin) = origin.and_then(|o| o.parse().ok()) {
        request.headers_mut().insert("origin", origin);
    }
    match tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(request)).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            ))
        }
        Ok(Err(other)) => panic!("{url}: {other}"),
        Err(_) => panic!("{url}: no upgrade within {DEADLINE:?}"),
    }
}

/// The next message other than pings and pongs.
pub(crate) async fn next_message(socket: &mut Socket) -> Message {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next()).await {
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(Some(Ok(message))) => return message,
            other => panic!("expected a WebSocket message, got {other:?}"),
        }
    }
}

/// The next JSON text message.
pub(crate) async fn next_json(socket: &mut Socket) -> Value {
    match next_message(socket).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
        other => panic!("expected a JSON text message, got {other:?}"),
    }
}

/// Sends a JSON text message.
pub(crate) async fn send_json(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
}

/// The close code the server ends with.
pub(crate) async fn close_code(socket: &mut Socket) -> Option<u16> {
    match next_message(socket).await {
        Message::Close(frame) => frame.map(|f| u16::from(f.code)),
        other => panic!("expected a close, got {other:?}"),
    }
}
