//! The WebSocket endpoint over real sockets, with a WebSocket client.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use realtime_core::{Manager, ManagerConfig, PublishRequest, SubscribeRequest};
use realtime_ws::{OriginPolicy, WsConfig, WsHandler};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const DEADLINE: Duration = Duration::from_secs(10);

async fn serve(manager: &Manager, config: WsConfig) -> String {
    let handler = WsHandler::builder(manager.clone())
        .config(config)
        .build()
        .unwrap();
    serve_handler(handler).await
}

/// Serves `handler` at `/ws` on a free port; returns its `ws://` URL.
async fn serve_handler(handler: WsHandler) -> String {
    let app = axum::Router::new().route("/ws", handler.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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

/// A socket past its first (`subscribed`) message.
async fn connected(url: &str) -> Socket {
    let mut socket = connect(url, None).await.unwrap();
    next_json(&mut socket).await;
    socket
}

/// The HTTP status and JSON body of a refused upgrade.
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

/// The next JSON message, skipping pings and pongs.
async fn next_json(socket: &mut Socket) -> Value {
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
async fn close_code(socket: &mut Socket) -> u16 {
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

async fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::text(value.to_string())).await.unwrap();
}

fn manager() -> Manager {
    Manager::builder().build().unwrap()
}

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
            next_json(&mut socket).await,
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
    let (status, body) = refusal(connect(&format!("{url}?topics=ok;bad%2Ftopic"), None).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_topic"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("\"bad/topic\""),
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
async fn oversized_frames_close_with_1009() {
    let manager = manager();
    let mut config = WsConfig::default();
    config.read_limit = 1024;
    let url = serve(&manager, config).await;
    let mut socket = connected(&url).await;
    socket.send(Message::text("x".repeat(4096))).await.unwrap();
    assert_eq!(close_code(&mut socket).await, 1009);
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007() {
    let manager = manager();
    let url = serve(&manager, WsConfig::default()).await;
    let mut socket = connected(&url).await;
    let frame = Frame::message(vec![0xff, 0xfe, b'{'], OpCode::Data(Data::Text), true);
    socket.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(close_code(&mut socket).await, 1007);
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
        json!({"type": "subscribe", "topics": ["bad/topic"]}),
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
        next_json(&mut socket).await,
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
        next_json(&mut socket).await,
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
        next_json(&mut socket).await,
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
    let mut manager_config = ManagerConfig::default();
    manager_config.heartbeat_interval = Duration::from_millis(50);
    let manager = Manager::builder().config(manager_config).build().unwrap();
    let mut config = WsConfig::default();
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
                assert!(message["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_1013() {
    let mut manager_config = ManagerConfig::default();
    manager_config.client_buffer = 2;
    let manager = Manager::builder().config(manager_config).build().unwrap();
    let url = serve(&manager, WsConfig::default()).await;
    let mut socket = connect(&format!("{url}?topics=firehose"), None)
        .await
        .unwrap();
    next_json(&mut socket).await;
    // Far more than the socket buffers hold, while the client reads nothing.
    let payload = "x".repeat(64 * 1024);
    let mut last = None;
    for _ in 0..2_000 {
        last = Some(
            manager
                .publish(PublishRequest::new("firehose", payload.clone()))
                .await
                .unwrap()
                .id,
        );
    }
    let mut events = 0;
    let code = loop {
        match tokio::time::timeout(DEADLINE, socket.next())
            .await
            .expect("traffic in time")
        {
            Some(Ok(Message::Text(_))) => events += 1,
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 1013, "slow consumer close code after {events} events");
    assert!(
        events < 2_000,
        "the client was cut off, it did not get everything ({events}, last {last:?})"
    );
}

/// Every channel a client joins passes the hook: an in-band `subscribe` to a channel the
/// hook refuses is an error message, and nothing of that channel arrives.
#[tokio::test]
async fn in_band_subscribes_pass_the_hook() {
    use realtime_core::auth::{Authorize, Grant, Rejection};
    let manager = manager();
    let hook = Authorize::new(|_: &http::request::Parts, sub: &SubscribeRequest| {
        let allowed = sub.channels.iter().all(|c| c.channel.starts_with("mine-"));
        async move {
            if allowed {
                Ok(Grant {
                    tenant: Some("t1".into()),
                    subject: None,
                })
            } else {
                Err(Rejection::forbidden("not your channel"))
            }
        }
    });
    let handler = WsHandler::builder(manager.clone())
        .authorize(hook)
        .build()
        .unwrap();
    let url = format!("{}?topics=mine-a", serve_handler(handler).await);
    let mut socket = connected(&url).await;
    let subscribe = |topics: &str| {
        Message::Text(format!(r#"{{"type":"subscribe","topics":[{topics}]}}"#).into())
    };
    socket.send(subscribe(r#""secret""#)).await.unwrap();
    let refused = next_json(&mut socket).await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("forbidden")),
        "{refused}"
    );
    socket.send(subscribe(r#""mine-b""#)).await.unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "subscribed");
    for channel in ["secret", "mine-b"] {
        manager
            .publish(PublishRequest::new(channel, channel))
            .await
            .unwrap();
    }
    let event = next_json(&mut socket).await;
    assert_eq!(
        (event["channel"].as_str(), event["data"].as_str()),
        (Some("mine-b"), Some("mine-b")),
        "the refused channel's event must not arrive: {event}"
    );
}

#[tokio::test]
async fn a_repeated_routing_parameter_is_refused() {
    let mut config = WsConfig::default();
    config.routing_from_query = true;
    let url = serve(&manager(), config).await;
    let (status, body) = refusal(connect(&format!("{url}?topics=c&tenant=a&tenant=b"), None).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("repeated_parameter"))
    );
}

/// The obvious graceful shutdown works: `axum::serve(..).with_graceful_shutdown` with
/// `manager.close_on(signal)`, then `drained_within`. The server returns (it does not wait
/// forever for streams), and the WebSocket client gets 1001, not a dropped connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_with_close_on_sends_1001_and_returns() {
    let manager = manager();
    let handler = WsHandler::builder(manager.clone()).build().unwrap();
    let app = axum::Router::new().route("/ws", handler.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws?topics=c", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = {
        let manager = manager.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(manager.close_on(async move {
                    stopped.await.ok();
                }))
                .await
                .unwrap();
            manager.drained_within(DEADLINE).await
        })
    };
    let mut socket = connected(&url).await;
    stop.send(()).unwrap();
    assert_eq!(close_code(&mut socket).await, 1001);
    let drained = tokio::time::timeout(DEADLINE, server)
        .await
        .expect("the server returns once the streams ended")
        .unwrap();
    assert!(drained, "every client was released");
}

/// A client that sends pings and never reads: the pongs pile up in the server's write buffer
/// until its limit, and then the connection is dropped — memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_cut() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = WsConfig::default();
    config.max_write_buffer = 64 * 1024;
    let url = serve(&manager(), config).await;
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
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
    // A masked ping with a 125-byte payload (mask 0: the payload goes as is).
    let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    ping.extend_from_slice(&[b'p'; 125]);
    let pings: Vec<u8> = ping.repeat(512);
    // Well before the server's own ping (15 s) could time out its write (10 s later).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    let mut sent = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, stream.write_all(&pings)).await {
            Ok(Ok(())) => sent += pings.len(),
            Ok(Err(_)) => break,
            Err(_) => panic!("still accepting pings after {sent} bytes while never reading"),
        }
    }
    assert!(sent > 0);
}
