//! The endpoint on a real actix-web server, with a WebSocket client: the checks before the
//! upgrade, the protocol, resume, 1009 and shutdown — what `realtime-ws` does on axum.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use actix_web::{App, HttpServer};
use futures_util::{SinkExt, StreamExt};
use realtime_core::{Manager, PublishRequest};
use realtime_ws_actix::{OriginPolicy, WsConfig, WsHandler, close_code};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(10);

fn serve(manager: &Manager, config: WsConfig) -> String {
    let handler = WsHandler::builder(manager.clone())
        .config(config)
        .build()
        .unwrap();
    let server = HttpServer::new(move || App::new().service(handler.resource("/ws")))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("ws://{addr}/ws")
}

async fn connect(url: &str, origin: Option<&str>) -> Result<Socket, tungstenite::Error> {
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

fn refusal(result: Result<Socket, tungstenite::Error>) -> (u16, Value) {
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

async fn next(socket: &mut Socket) -> Message {
    loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(message)) => return message,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

#[actix_web::test]
async fn the_checks_before_the_upgrade() {
    let manager = Manager::builder().build().unwrap();
    let mut config = WsConfig::default();
    config.origin_policy = OriginPolicy::allow_list(["https://app.example"]);
    let url = serve(&manager, config);
    let (status, body) = refusal(connect(&url, Some("https://evil.example")).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let (status, body) =
        refusal(connect(&format!("{url}?topics=a*b"), Some("https://app.example")).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_topic"))
    );
    let http_url = url.replacen("ws://", "http://", 1);
    let plain = reqwest_free_get(&http_url).await;
    assert!(plain.starts_with("HTTP/1.1 426"), "{plain}");
    assert!(
        plain.to_ascii_lowercase().contains("upgrade: websocket"),
        "{plain}"
    );
}

/// A plain GET over a raw socket (no HTTP client in this crate's tests): the response head.
async fn reqwest_free_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nOrigin: https://app.example\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[actix_web::test]
async fn events_resume_and_protocol_messages() {
    let manager = Manager::builder().build().unwrap();
    let url = serve(&manager, WsConfig::default());
    let mut socket = connect(&format!("{url}?topics=user:42"), None)
        .await
        .unwrap();
    assert_eq!(
        without_client_id(next_json(&mut socket).await),
        json!({"type": "subscribed", "topics": ["user:42"]})
    );
    let live = manager
        .publish(PublishRequest::new("user:42", "hello"))
        .await
        .unwrap();
    let event = next_json(&mut socket).await;
    assert_eq!(
        (event["type"].as_str(), event["id"].as_str()),
        (Some("event"), Some(live.id.to_token().as_str()))
    );
    let first = manager
        .publish(PublishRequest::new("orders", "1"))
        .await
        .unwrap();
    manager
        .publish(PublishRequest::new("orders", "2"))
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"type": "subscribe", "topics": ["orders"], "last_event_ids": {"orders": first.id.to_token()}}),
    )
    .await;
    let replayed = next_json(&mut socket).await;
    assert_eq!(
        (replayed["type"].as_str(), replayed["data"].as_str()),
        (Some("event"), Some("2"))
    );
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await["type"], "pong");
    socket
        .send(Message::Binary(vec![1u8].into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["code"], "binary_not_supported");
    send(
        &mut socket,
        json!({"type": "subscribe", "topics": ["bad*"]}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["code"], "invalid_topic");
}

#[actix_web::test]
async fn an_oversized_message_closes_with_1009_and_shutdown_with_1001() {
    let manager = Manager::builder().build().unwrap();
    let mut config = WsConfig::default();
    config.read_limit = 1024;
    let url = serve(&manager, config);
    let mut socket = connect(&format!("{url}?topics=a"), None).await.unwrap();
    next_json(&mut socket).await;
    socket
        .send(Message::Text("x".repeat(4096).into()))
        .await
        .unwrap();
    match next(&mut socket).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), close_code::TOO_BIG),
        other => panic!("expected a close, got {other:?}"),
    }
    let mut other = connect(&format!("{url}?topics=b"), None).await.unwrap();
    next_json(&mut other).await;
    manager.close().await.unwrap();
    match next(&mut other).await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), close_code::SHUTDOWN),
        other => panic!("expected a close, got {other:?}"),
    }
}

/// A frame header that declares a terabyte is refused from the header, with 1009, before the
/// server buffers anything (actix-http alone would wait for, and hold, the whole frame).
#[actix_web::test]
async fn a_huge_declared_frame_is_refused_from_its_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let manager = Manager::builder().build().unwrap();
    let url = serve(&manager, WsConfig::default());
    let host = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "GET /ws?topics=a HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // A masked text frame declaring 2^40 bytes, and a first trickle of them.
    let mut frame = vec![0x81, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    frame.extend([b'x'; 64]);
    stream.write_all(&frame).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let code = loop {
        // The close frame: 0x88, a length, then the code.
        if let Some(at) = seen.windows(2).position(|w| w[0] == 0x88 && w[1] >= 2)
            && seen.len() >= at + 4
        {
            break u16::from_be_bytes([seen[at + 2], seen[at + 3]]);
        }
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a close within the deadline")
            .unwrap();
        assert!(
            read > 0,
            "the connection ended without a close frame: {seen:?}"
        );
        seen.extend_from_slice(&buf[..read]);
    };
    assert_eq!(code, close_code::TOO_BIG);
}

/// A message without its `client_id` (the greeting carries a generated one).
fn without_client_id(mut message: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = message.as_object_mut() {
        fields.remove("client_id");
    }
    message
}
