//! Helpers of the WebSocket endpoint's socket tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_core::Manager;
use realtime_ws::{WsConfig, WsHandler};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const DEADLINE: Duration = Duration::from_secs(10);

pub async fn serve(manager: &Manager, config: WsConfig) -> String {
    let handler = WsHandler::builder(manager.clone())
        .config(config)
        .build()
        .unwrap();
    serve_handler(handler).await
}

/// Serves `handler` at `/ws` on a free port; returns its `ws://` URL.
pub async fn serve_handler(handler: WsHandler) -> String {
    let app = axum::Router::new().route("/ws", handler.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("ws://{addr}/ws")
}

pub async fn connect(url: &str, origin: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// A socket past its first (`subscribed`) message.
pub async fn connected(url: &str) -> Socket {
    let mut socket = connect(url, None).await.unwrap();
    next_json(&mut socket).await;
    socket
}

/// The HTTP status and JSON body of a refused upgrade.
pub fn refusal(result: Result<Socket, tungstenite::Error>) -> (u16, Value) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                serde_json::from_slice(&body).unwrap(),
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the upgrade succeeded"),
    }
}

/// The next JSON message, skipping pings and pongs.
pub async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

/// The close code the server ends with.
pub async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("read failed before the close frame: {e}"),
        }
    }
}

pub async fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).await.unwrap();
}

pub fn manager() -> Manager {
    Manager::builder().build().unwrap()
}

/// A WebSocket upgrade of `/ws?topics=c` by hand over a plain TCP socket (with a receive
/// buffer of `recv_buffer` bytes if given), past the server's `101` answer: for clients that
/// misbehave at the frame level.
pub async fn raw_upgrade(url: &str, recv_buffer: Option<u32>) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    let mut stream = socket.connect(addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws?topics=c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}
