//! The WebSocket endpoint over real sockets, with a WebSocket client: origins, errors,
//! resume, the protocol, keepalives, shutdown, authorization.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use realtime_core::{Manager, PublishRequest};
use realtime_ws::{OriginPolicy, WsConfig, WsHandler};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn origins_are_checked_before_the_upgrade() {
    let manager = manager();
    let mut config = WsConfig::default();
    config.origin_policy =
        OriginPolicy::allow_list(["https://app.example.com", "https://*.example.org"]);
    let url = serve(&manager, config).await;
    let mut open = Vec::new();
    for allowed in ["https://app.example.com", "https://a.example.org"] {
        let mut socket = connect(&format!("{url}?topics=a"), Some(allowed))
            .await
            .unwrap();
        assert_eq!(
            without_client_id(next_json(&mut socket).await),
            json!({"type": "subscribed", "topics": ["a"]})
        );
        open.push(socket);
    }
    for refused in [Some("https://evil.com"), Some("https://example.org"), None] {
        let (status, body) = refusal(connect(&url, refused).await);
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("origin_not_allowed")),
            "{refused:?}"
        );
    }
    assert_eq!(
        manager.connection_count(),
        2,
        "refused requests hold no client"
    );
}

#[tokio::test]
async fn bad_topics_and_plain_http_get_json_errors() {
    let manager = manager();
    let mut config = WsConfig::default();
    config.max_topic_count = 2;
    let url = serve(&manager, config).await;
    let (status, body) = refusal(connect(&format!("{url}?topics=a,b,c"), None).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_topic"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("more than 2 topics")
    );
    let (status, body) = refusal(connect(&format!("{url}?topics=ok;bad%2Atopic"), None).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_topic"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("\"bad*topic\""),
        "{body}"
    );
    let response = reqwest_free_get(&url.replace("ws://", "http://")).await;
    assert!(response.starts_with("HTTP/1.1 426"), "{response}");
    assert!(response.contains("upgrade_required"));
}

/// A plain HTTP GET over a raw socket (no HTTP client dependency needed).
async fn reqwest_free_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn malformed_messages_get_an_error_and_the_connection_lives() {
    let manager = manager();
    let url = serve(&manager, WsConfig::default()).await;
    let mut socket = connected(&url).await;
    for bad in ["not json", r#"{"type":"dance"}"#, r#"{"topics":["a"]}"#] {
        socket.send(Message::text(bad)).await.unwrap();
        let reply = next_json(&mut socket).await;
        assert_eq!(
            (reply["type"].as_str(), reply["code"].as_str()),
            (Some("error"), Some("invalid_message")),
            "{bad}"
        );
    }
    send(
        &mut socket,
        json!({"type": "subscribe", "topics": ["bad*topic"]}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["code"], "invalid_topic");
    socket.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next_json(&mut socket).await["code"], "binary_not_supported");
    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut socket).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn resume_after_reconnect_replays_exactly() {
    let manager = manager();
    let url = serve(&manager, WsConfig::default()).await;
    let mut socket = connect(&format!("{url}?topics=orders"), None)
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut request = PublishRequest::new("orders", format!("e{i}"));
        request.event_type = Some("created".into());
        ids.push(manager.publish(request).await.unwrap().id.to_token());
    }
    for (i, id) in ids.iter().enumerate() {
        let message = next_json(&mut socket).await;
        assert_eq!(
            message,
            json!({"type": "event", "channel": "orders", "id": id, "event": "created", "data": format!("e{i}")})
        );
    }
    socket.close(None).await.unwrap();
    let mut missed = Vec::new();
    for i in 3..5 {
        missed.push(
            manager
                .publish(PublishRequest::new("orders", format!("e{i}")))
                .await
                .unwrap()
                .id
                .to_token(),
        );
    }
    // Reconnect with the topic in the URL, then resume it from the last id seen.
    let mut socket = connect(&format!("{url}?topics=orders"), None)
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    send(
        &mut socket,
        json!({"type": "subscribe", "topics": ["orders"], "last_event_ids": {"orders": ids[2]}}),
    )
    .await;
    let replayed = [next_json(&mut socket).await, next_json(&mut socket).await];
    assert_eq!(
        [replayed[0]["id"].as_str(), replayed[1]["id"].as_str()],
        [Some(&*missed[0]), Some(&*missed[1])]
    );
    assert_eq!(
        without_client_id(next_json(&mut socket).await),
        json!({"type": "subscribed", "topics": ["orders"]})
    );
    let live = manager
        .publish(PublishRequest::new("orders", "live"))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut socket).await["id"],
        live.id.to_token(),
        "no duplicate of the replay"
    );
    // An unknown id gets the gap message, not a replay.
    send(
        &mut socket,
        json!({"type": "subscribe", "topics": ["orders"], "last_event_ids": {"orders": "nope"}}),
    )
    .await;
    let gap = next_json(&mut socket).await;
    assert_eq!(
        (gap["type"].as_str(), gap["reason"].as_str()),
        (Some("gap"), Some("unknown_position"))
    );
    assert_eq!(gap["head"], live.id.to_token());
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let manager = manager();
    let url = serve(&manager, WsConfig::default()).await;
    let mut socket = connect(&format!("{url}?topics=a,b"), None).await.unwrap();
    assert_eq!(
        without_client_id(next_json(&mut socket).await),
        json!({"type": "subscribed", "topics": ["a", "b"]})
    );
    send(
        &mut socket,
        json!({"type": "unsubscribe", "topics": ["a", "never"]}),
    )
    .await;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"type": "unsubscribed", "topics": ["a"]})
    );
    manager
        .publish(PublishRequest::new("a", "to a"))
        .await
        .unwrap();
    manager
        .publish(PublishRequest::new("b", "to b"))
        .await
        .unwrap();
    let message = next_json(&mut socket).await;
    assert_eq!(
        (message["channel"].as_str(), message["data"].as_str()),
        (Some("b"), Some("to b"))
    );
    assert_eq!(
        manager.channel_count(),
        1,
        "the channel left has no local subscription"
    );
    send(&mut socket, json!({"type": "subscribe", "topics": ["a"]})).await;
    assert_eq!(
        without_client_id(next_json(&mut socket).await),
        json!({"type": "subscribed", "topics": ["a"]})
    );
    manager
        .publish(PublishRequest::new("a", "again"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["data"], "again");
}

#[tokio::test]
async fn keepalive_and_server_pings() {
    let manager = Manager::builder().build().unwrap();
    let mut config = WsConfig::default();
    config.heartbeat_interval = Duration::from_millis(50);
    config.keepalive_interval = Some(Duration::from_millis(50));
    let url = serve(&manager, config).await;
    let mut socket = connected(&url).await;
    let (mut saw_ping, mut saw_keepalive) = (false, false);
    while !(saw_ping && saw_keepalive) {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("traffic in time")
        {
            Some(Ok(Message::Ping(_))) => saw_ping = true,
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(message["type"], "keepalive");
                // RFC 3339 in UTC, as the Go package's: `2026-11-30T07:08:09.123Z`.
                let stamp = message["timestamp"].as_str().unwrap();
                assert_eq!(
                    (stamp.len(), &stamp[10..11], &stamp[23..]),
                    (24, "T", "Z"),
                    "{stamp}"
                );
                assert!(stamp >= "2026-01-01", "{stamp}");
                saw_keepalive = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_closes_with_1001_and_disconnect_with_1000() {
    let manager = manager();
    let url = serve(&manager, WsConfig::default()).await;
    let mut first = connected(&url).await;
    assert_eq!(manager.disconnect_all(), 1);
    assert_eq!(close_code(&mut first).await, 1000);
    let mut second = connected(&url).await;
    manager.close().await.unwrap();
    assert_eq!(close_code(&mut second).await, 1001);
}

#[tokio::test]
async fn the_hook_runs_before_the_upgrade() {
    use realtime_core::auth::{Authorize, Grant, Rejection};
    let manager = manager();
    let hook = Authorize::new(|parts: &http::request::Parts, _| {
        let ok = parts
            .headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer t1");
        async move {
            if ok {
                Ok(Grant {
                    tenant: Some("t1".into()),
                    subject: None,
                    ..Grant::default()
                })
            } else {
                Err(Rejection::unauthorized("token"))
            }
        }
    });
    let handler = WsHandler::builder(manager.clone())
        .authorize(hook)
        .build()
        .unwrap();
    let url = format!("{}?topics=c", serve_handler(handler).await);
    let (status, body) = refusal(connect(&url, None).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let mut request = url.as_str().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer t1".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    next_json(&mut socket).await;
    for tenant in ["t2", "t1"] {
        let mut publish = PublishRequest::new("c", tenant);
        publish.tenant = Some(tenant.into());
        manager.publish(publish).await.unwrap();
    }
    assert_eq!(
        next_json(&mut socket).await["data"],
        "t1",
        "another tenant's event must not arrive"
    );
}

/// WebSocket accepts every channel name SSE accepts (`user:42`, `team/a@b`), in the URL and
/// in-band, and delivers their events.
#[tokio::test]
async fn every_channel_name_sse_accepts_works_over_websocket() {
    let manager = manager();
    let url = serve(&manager, WsConfig::default()).await;
    let mut socket = connected(&format!("{url}?topics=user:42")).await;
    send(
        &mut socket,
        json!({"type": "subscribe", "topics": ["team/a@b"]}),
    )
    .await;
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    for channel in ["user:42", "team/a@b"] {
        manager
            .publish(PublishRequest::new(channel, channel))
            .await
            .unwrap();
        let event = next_json(&mut socket).await;
        assert_eq!(
            (event["channel"].as_str(), event["data"].as_str()),
            (Some(channel), Some(channel))
        );
    }
}

/// A message without its `client_id` (the greeting carries a generated one).
fn without_client_id(mut message: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = message.as_object_mut() {
        fields.remove("client_id");
    }
    message
}
