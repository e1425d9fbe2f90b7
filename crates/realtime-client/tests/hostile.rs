//! The client against hostile servers: endless events, silence, trickled bytes, replays it
//! cannot take, refusals and redirects.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{DEADLINE, next, next_event};
use futures_util::StreamExt;
use realtime_client::{Error, RealtimeClient, Update};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that answers any request with `head` and then `body` (written in 64 KiB pieces
/// while the client reads), once per connection.
async fn hostile(head: &'static str, body: Option<Vec<u8>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(head.as_bytes()).await;
                if let Some(body) = body {
                    for piece in body.chunks(64 << 10) {
                        if socket.write_all(piece).await.is_err() {
                            return;
                        }
                    }
                }
                // Then hold the connection open, silent.
                let _ = socket.read(&mut request).await;
            });
        }
    });
    format!("http://{addr}/events")
}

const STREAM_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_event_and_a_silent_server_end_the_connection_not_the_memory() {
    // 8 MiB of one data line that never ends: over the 1 MiB limit, the connection is dropped.
    let mut endless = b"data: ".to_vec();
    endless.resize(8 << 20, b'x');
    let url = hostile(STREAM_HEAD, Some(endless)).await;
    let mut client = RealtimeClient::sse(url)
        .channel("c")
        .max_message_bytes(1 << 20)
        .build()
        .unwrap();
    match next(&mut client).await {
        Update::Disconnected {
            error: Error::Protocol(_),
            ..
        } => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
    // Headers, then nothing: no heartbeat within the idle timeout.
    let url = hostile(STREAM_HEAD, None).await;
    let mut client = RealtimeClient::sse(url)
        .channel("c")
        .idle_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    match next(&mut client).await {
        Update::Disconnected {
            error: Error::Idle(_),
            ..
        } => {}
        other => panic!("expected an idle timeout, got {other:?}"),
    }
}

/// A stream server that greets (`: client_id`, `: connected`), then writes `body` in pieces
/// of `piece` bytes, one every `every` — forever once `body` is spent if `endless` (one
/// more byte each time) — on every connection; its URL.
async fn trickling(body: Vec<u8>, piece: usize, every: Duration, endless: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let greeting = format!("{STREAM_HEAD}: client_id t\n\n: connected\n\n");
                if socket.write_all(greeting.as_bytes()).await.is_err() {
                    return;
                }
                let mut tick = tokio::time::interval(every);
                let mut pieces = body.chunks(piece);
                loop {
                    tick.tick().await;
                    let next = match pieces.next() {
                        Some(next) => next,
                        None if endless => b"x",
                        None => break,
                    };
                    if socket.write_all(next).await.is_err() {
                        return;
                    }
                }
                let _ = socket.read(&mut request).await;
            });
        }
    });
    format!("http://{addr}/events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_trickling_bytes_that_finish_no_frame_is_idle() {
    // One byte of an endless data line every 20 ms: every chunk is traffic, but no frame
    // ever completes.
    let url = trickling(b"data: ".to_vec(), 6, Duration::from_millis(20), true).await;
    let mut client = RealtimeClient::sse(url)
        .channel("c")
        .idle_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(matches!(next(&mut client).await, Update::Connected { .. }));
    // Within the test's deadline (10 s), far under the 1 MiB message limit's 5 hours.
    match next(&mut client).await {
        Update::Disconnected {
            error: Error::Idle(_),
            ..
        } => {}
        other => panic!("expected an idle timeout, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_event_on_a_slow_link_takes_longer_than_the_idle_timeout() {
    // 256 KiB of data in 16 KiB pieces every 100 ms: 1.6 s for the event, with an idle
    // timeout of 400 ms — the event is still coming, at 160 KiB/s.
    let mut event = b"id: a-1\ndata: ".to_vec();
    event.resize(event.len() + (256 << 10), b'x');
    event.extend_from_slice(b"\n\n");
    let url = trickling(event, 16 << 10, Duration::from_millis(100), false).await;
    let mut client = RealtimeClient::sse(url)
        .channel("c")
        .idle_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    assert!(matches!(next(&mut client).await, Update::Connected { .. }));
    let event = next_event(&mut client).await;
    assert_eq!((event.id.as_str(), event.data.len()), ("a-1", 256 << 10));
}

/// A WebSocket server that greets, then sends `messages` after the client's subscribe, on
/// every connection.
async fn hostile_ws(messages: &'static [&'static str]) -> String {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(socket).await else {
                    return;
                };
                let greeting = r#"{"type":"subscribed","topics":[],"client_id":"h"}"#;
                let _ = ws.send(Message::text(greeting)).await;
                let _ = ws.next().await; // the subscribe
                for message in messages {
                    let _ = ws.send(Message::text(*message)).await;
                }
                let _ = ws.next().await;
            });
        }
    });
    format!("ws://{addr}/ws")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_this_client_cannot_take_ends_the_stream_after_five_tries() {
    let url = hostile_ws(&[
        // Another channel's event and a keepalive without a type: ignored.
        r#"{"type":"event","channel":"other","id":"a-1","data":"x"}"#,
        r#"{"ping":"custom keepalive"}"#,
        r#"{"type":"event","channel":"c","id":"a-1","data":"ok"}"#,
        // An id that is not a position: a protocol error, on every reconnect.
        r#"{"type":"event","channel":"c","id":"not an id","data":"x"}"#,
    ])
    .await;
    let mut client = RealtimeClient::websocket(url)
        .channel("c")
        .reconnect_delays(Duration::from_millis(5), Duration::from_millis(10))
        .build()
        .unwrap();
    assert_eq!(next_event(&mut client).await.id, "a-1");
    let mut disconnects = 0;
    loop {
        match tokio::time::timeout(DEADLINE, client.next()).await.unwrap() {
            Some(Ok(Update::Disconnected {
                error: Error::Protocol(_),
                ..
            })) => disconnects += 1,
            Some(Ok(Update::Event(event))) => panic!("only a-1 is taken, once: {event:?}"),
            Some(Err(Error::Protocol(_))) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(disconnects, 4, "the fifth failure in a row is final");
    assert!(client.next().await.is_none());
}

#[test]
fn only_refusals_that_cannot_change_are_final() {
    let refused = |code: &str| Error::SubscriptionRefused {
        code: code.into(),
        message: String::new(),
    };
    assert!(
        refused("subscribe_failed").is_retryable(),
        "a shutdown, a slow store"
    );
    assert!(!refused("forbidden").is_retryable());
    assert!(!refused("invalid_topic").is_retryable());
    let status = |status| Error::Refused {
        status,
        body: String::new(),
        retry_after: None,
    };
    assert!(status(503).is_retryable() && status(429).is_retryable());
    assert!(!status(401).is_retryable() && !status(404).is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_is_retried_after_its_retry_after() {
    let head = "HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let url = hostile(head, None).await;
    let mut client = RealtimeClient::sse(url)
        .channel("c")
        .reconnect_delays(Duration::from_millis(10), Duration::from_secs(60))
        .build()
        .unwrap();
    match next(&mut client).await {
        Update::Disconnected {
            error:
                Error::Refused {
                    status: 503,
                    retry_after,
                    body,
                },
            retry_in,
        } => {
            assert_eq!(
                (retry_after, body.as_str()),
                (Some(Duration::from_secs(7)), "{}")
            );
            assert!(
                retry_in >= Duration::from_secs(7),
                "waits as asked: {retry_in:?}"
            );
        }
        other => panic!("expected a retryable 503, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_it_is_a_final_refusal() {
    // Following it would carry the configured headers (a token) to wherever it points.
    let url = hostile(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/steal\r\ncontent-length: 0\r\n\r\n",
        None,
    )
    .await;
    let mut client = RealtimeClient::sse(url)
        .channel("a")
        .header("authorization", "Bearer SECRET")
        .build()
        .unwrap();
    match tokio::time::timeout(DEADLINE, client.next()).await {
        Ok(Some(Err(error @ Error::Refused { status: 302, .. }))) => {
            assert!(!format!("{error:?}").contains("SECRET"));
        }
        other => panic!("expected a final 302, got {other:?}"),
    }
}
