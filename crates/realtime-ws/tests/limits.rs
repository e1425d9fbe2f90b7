//! The WebSocket endpoint against careless and hostile clients: oversized and invalid
//! frames, clients that never read or flood pings, channels the hook never saw, shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use realtime_core::{Manager, ManagerConfig, PublishRequest, SubscribeRequest};
use realtime_ws::{WsConfig, WsHandler};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

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
                    ..Grant::default()
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
        let mut publish = PublishRequest::new(channel, channel);
        publish.tenant = Some("t1".into());
        manager.publish(publish).await.unwrap();
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
        (400, Some("invalid_request"))
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

/// A client that sends pings and never reads: the pongs back up (within the write buffer),
/// the flush that answers a ping stalls, and the write timeout drops the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_cut() {
    use tokio::io::AsyncWriteExt;
    let mut config = WsConfig::default();
    config.max_write_buffer = 64 * 1024;
    config.write_timeout = Duration::from_secs(1);
    let url = serve(&manager(), config).await;
    // A small receive buffer: the server's pongs back up quickly.
    let mut stream = raw_upgrade(&url, Some(4096)).await;
    // A masked ping with a 125-byte payload (mask 0: the payload goes as is).
    let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    ping.extend_from_slice(&[b'p'; 125]);
    let pings: Vec<u8> = ping.repeat(512);
    // Well before the server's own ping (15 s) could time out its write.
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

/// A client sending a frame far over the read limit gets the 1009 close frame, not a reset
/// that destroys it: the server sends the close and lingers before dropping the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_far_over_the_limit_gets_1009_not_a_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = WsConfig::default();
    config.read_limit = 1024;
    let url = serve(&manager(), config).await;
    let stream = raw_upgrade(&url, None).await;
    // A masked text frame declaring 16 MiB, and the first 256 KiB of its payload.
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(16u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend(std::iter::repeat_n(b'x', 256 * 1024));
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&frame).await;
        write
    });
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = tokio::time::timeout(DEADLINE, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(error) => return Err(error),
            }
            // The close frame: opcode 0x88, length, code 1009 (0x03f1).
            if seen
                .windows(4)
                .any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xf1)
            {
                return Ok(());
            }
        }
    })
    .await
    .expect("an answer in time");
    let _ = writer.await;
    assert!(
        seen.windows(4)
            .any(|w| w[0] == 0x88 && w[2] == 0x03 && w[3] == 0xf1),
        "no 1009 close frame ({outcome:?}); got {} bytes",
        seen.len()
    );
}

/// The same with a WebSocket client library that sends the whole message before it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_library_client_sending_megabytes_over_the_limit_sees_1009() {
    let mut config = WsConfig::default();
    config.read_limit = 1024;
    let url = serve(&manager(), config).await;
    let mut socket = connected(&url).await;
    let sent = socket.send(Message::text("x".repeat(4 << 20))).await;
    let code = close_code(&mut socket).await;
    assert_eq!(code, 1009, "send result: {sent:?}");
}
