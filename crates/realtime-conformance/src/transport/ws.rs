//! The WebSocket endpoint, over its socket.

use futures_util::SinkExt;
use realtime_core::PublishRequest;
use realtime_http::ws::close_code;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::client::{
    Socket, close_code as close_code_of, next_json, next_message, open_ws, send_json,
};
use super::{ALLOWED_ORIGIN, Server};

/// Before the upgrade: a foreign origin → 403 `origin_not_allowed`; a bad topic → 400
/// `invalid_topic`; a plain GET → 426 `upgrade_required`.
pub async fn ws_checks_before_the_upgrade(server: &Server) {
    match open_ws(&server.ws("topics=a"), Some("https://evil.example")).await {
        Err((status, body)) => assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("origin_not_allowed"))
        ),
        Ok(_) => panic!("a foreign origin must be refused"),
    }
    match open_ws(&server.ws("topics=a*b"), Some(ALLOWED_ORIGIN)).await {
        Err((status, body)) => {
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_topic"))
            );
        }
        Ok(_) => panic!("a bad topic must be refused"),
    }
    let plain = reqwest::Client::new()
        .get(format!("{}/ws", server.base))
        .header("origin", ALLOWED_ORIGIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET: {e}"));
    assert_eq!(plain.status().as_u16(), 426);
    assert_eq!(plain.headers()["upgrade"], "websocket");
    let body: serde_json::Value = plain.json().await.unwrap_or_default();
    assert_eq!(body["error"], "upgrade_required");
}

/// The protocol: `subscribed` first (every channel name SSE accepts), live events, an exact
/// resume by `last_event_ids`, `ping` → `pong`, errors that keep the connection open.
pub async fn ws_resume_and_protocol(server: &Server) {
    let mut socket = open_ws(&server.ws("topics=user:42"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    assert_eq!(
        without_client_id(next_json(&mut socket).await),
        json!({"type": "subscribed", "topics": ["user:42"]})
    );
    let live = server
        .manager
        .publish(PublishRequest::new("user:42", "hello"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let event = next_json(&mut socket).await;
    assert_eq!(
        (
            event["type"].as_str(),
            event["id"].as_str(),
            event["data"].as_str()
        ),
        (
            Some("event"),
            Some(live.id.to_token().as_str()),
            Some("hello")
        )
    );
    let first = server
        .manager
        .publish(PublishRequest::new("orders", "1"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    server
        .manager
        .publish(PublishRequest::new("orders", "2"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let subscribe = json!({"type": "subscribe", "topics": ["orders"],
        "last_event_ids": {"orders": first.id.to_token()}});
    send_json(&mut socket, subscribe).await;
    let replayed = next_json(&mut socket).await;
    assert_eq!(replayed["data"], "2", "exactly the missed event");
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    send_json(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await["type"], "pong");
    send_json(
        &mut socket,
        json!({"type": "subscribe", "topics": ["bad*"]}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["code"], "invalid_topic");
    socket
        .send(Message::Text("not json".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next_json(&mut socket).await["code"], "invalid_message");
}

/// A message over the read limit closes the connection with 1009.
pub async fn ws_too_big(server: &Server) {
    let mut socket = open_ws(&server.ws("topics=a"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    next_json(&mut socket).await;
    socket
        .send(Message::Text("x".repeat(4096).into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(close_code_of(&mut socket).await, Some(close_code::TOO_BIG));
}

/// Closing the manager closes every socket with 1001 (reconnect, possibly elsewhere).
pub async fn ws_shutdown(server: &Server) {
    let mut socket = open_ws(&server.ws("topics=a"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    next_json(&mut socket).await;
    server
        .manager
        .close()
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    assert_eq!(close_code_of(&mut socket).await, Some(close_code::SHUTDOWN));
}

/// `backlog` on the URL: the newest events of its topics after `subscribed`, then live ones;
/// in a `subscribe` message: before its `subscribed`.
pub async fn ws_backlog(server: &Server) {
    for (channel, data) in [("feed", "1"), ("feed", "2"), ("feed", "3"), ("more", "m")] {
        server
            .manager
            .publish(PublishRequest::new(channel, data))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut socket = open_ws(&server.ws("topics=feed&backlog=2"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    assert_eq!(next_json(&mut socket).await["data"], "2");
    assert_eq!(next_json(&mut socket).await["data"], "3");
    send_json(
        &mut socket,
        json!({"type": "subscribe", "topics": ["more"], "backlog": 1}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["data"], "m");
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    let live = server
        .manager
        .publish(PublishRequest::new("feed", "4"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next_json(&mut socket).await["id"], live.id.to_token());
}

/// A message without its `client_id` (the greeting carries a generated one).
fn without_client_id(mut message: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = message.as_object_mut() {
        fields.remove("client_id");
    }
    message
}

/// Each event's data as it was published: text as a string, JSON as the value itself (one
/// parse), binary as a binary frame (the message's JSON, `\n`, the bytes) — live and in a
/// replay.
pub async fn ws_data_formats(server: &Server) {
    let mut socket = open_ws(&server.ws("topics=formats"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    let publish = |request: PublishRequest| async move {
        let event = server.manager.publish(request).await;
        event.unwrap_or_else(|e| panic!("publish: {e}"))
    };
    let start = publish(PublishRequest::new("formats", "start")).await;
    assert_eq!(next_json(&mut socket).await["data"], "start");
    let value = json!({"n": 1, "text": "a \"quoted\"\nline"});
    let published = [
        publish(PublishRequest::new("formats", "{\"n\":1}")).await,
        publish(PublishRequest::json("formats", &value).unwrap_or_else(|e| panic!("{e}"))).await,
        publish(PublishRequest::binary("formats", vec![0u8, b'\n', 0xff])).await,
    ];
    expect_formats(&mut socket, &published, &value).await;
    // Resumed from before them: the replay carries them the same way.
    let mut resumed = open_ws(&server.ws(""), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    assert_eq!(next_json(&mut resumed).await["type"], "subscribed");
    let resume = json!({"type": "subscribe", "topics": ["formats"],
        "last_event_ids": {"formats": start.id.to_token()}});
    send_json(&mut resumed, resume).await;
    expect_formats(&mut resumed, &published, &value).await;
    assert_eq!(next_json(&mut resumed).await["type"], "subscribed");
}

/// The next three messages are `published` (text, JSON `value`, binary), each as its format says.
async fn expect_formats(
    socket: &mut Socket,
    published: &[realtime_core::Event; 3],
    value: &serde_json::Value,
) {
    let [text, json, binary] = published;
    let message = next_json(socket).await;
    assert_eq!(message["id"], json!(text.id));
    assert_eq!(message.get("format"), None);
    assert_eq!(message["data"], "{\"n\":1}", "text stays a string");
    let message = next_json(socket).await;
    assert_eq!(message["id"], json!(json.id));
    assert_eq!(message["format"], "json");
    assert_eq!(&message["data"], value, "JSON data is the value itself");
    let Message::Binary(frame) = next_message(socket).await else {
        panic!("binary data must arrive as a binary frame");
    };
    let split = frame.iter().position(|&b| b == b'\n').unwrap_or_default();
    let head: serde_json::Value = serde_json::from_slice(&frame[..split]).unwrap_or_default();
    assert_eq!(
        head,
        json!({"type": "event", "channel": "formats", "id": binary.id, "format": "binary"})
    );
    assert_eq!(&frame[split + 1..], &binary.data[..]);
}
