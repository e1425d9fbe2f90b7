//! `Server` over raw sockets: the lean event-stream path and the hand-over to hyper.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use realtime_core::{Manager, PublishRequest};
use realtime_sse_axum::{Server, SseHandler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(10);

async fn start(manager: &Manager) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let sse = SseHandler::builder(manager.clone()).build().unwrap();
    let app = Router::new()
        .route("/events", sse.get())
        .route("/ping", get(|| async { "pong" }))
        .route("/echo", post(|body: String| async move { body }))
        // A handler that takes a while (as a publish to a broker does).
        .route(
            "/slow",
            post(|body: String| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                body
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(Server::new().serve(listener, app, shutdown));
    (addr, stop)
}

/// Connects and sends `request`.
async fn send(addr: std::net::SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    stream
}

/// Reads until `done` says the bytes so far are complete, or the peer closes.
async fn read_until(stream: &mut TcpStream, done: impl Fn(&str) -> bool) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        while !done(&String::from_utf8_lossy(&seen)) {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server answered in time");
    String::from_utf8(seen).unwrap()
}

#[tokio::test]
async fn event_streams_are_chunked_and_close_the_connection() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = send(
        addr,
        b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let head = read_until(&mut stream, |s| s.contains(": connected")).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for expected in [
        "content-type: text/event-stream\r\n",
        "transfer-encoding: chunked\r\n",
        "connection: close\r\n",
        "date: ",
    ] {
        assert!(head.contains(expected), "{expected:?} missing in {head}");
    }
    manager
        .publish(PublishRequest::new("c", "hello".to_owned()))
        .await
        .unwrap();
    let chunk = read_until(&mut stream, |s| s.ends_with("\n\n\r\n")).await;
    // `<hex size>\r\n<frame>\r\n`, the size counting the frame's bytes exactly.
    let (size, rest) = chunk.split_once("\r\n").unwrap();
    let frame = rest.strip_suffix("\r\n").unwrap();
    assert_eq!(usize::from_str_radix(size, 16).unwrap(), frame.len());
    assert!(frame.contains("data: hello\n"), "{frame}");
    manager.close().await.unwrap();
    let end = read_until(&mut stream, |s| s.ends_with("0\r\n\r\n")).await;
    assert!(end.contains("closed: shutdown"), "{end}");
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(
        rest.is_empty(),
        "the connection closes after the last chunk"
    );
}

#[tokio::test]
async fn http_1_0_streams_are_written_raw_until_close() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = send(
        addr,
        b"GET /events?channel=c HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let head = read_until(&mut stream, |s| s.contains(": connected\n\n")).await;
    assert!(!head.contains("transfer-encoding"), "{head}");
    manager
        .publish(PublishRequest::new("c", "plain".to_owned()))
        .await
        .unwrap();
    let frame = read_until(&mut stream, |s| s.ends_with("\n\n")).await;
    assert!(frame.starts_with("id: "), "no chunk size line: {frame:?}");
    assert!(frame.contains("data: plain\n"), "{frame}");
}

#[tokio::test]
async fn errors_on_the_lean_path_have_a_length_and_close() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = send(
        addr,
        b"GET /events?channel=a%20b HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}\r\n", body.len())),
        "{head}"
    );
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "invalid_channel");
}

#[tokio::test]
async fn other_requests_keep_alive_under_hyper() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Two pipelined requests, one with a body, in one write: hyper answers both in order.
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /ping HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await
        .unwrap();
    let answers = read_until(&mut stream, |s| s.ends_with("pong")).await;
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 2, "{answers}");
    assert!(answers.contains("\r\n\r\nhello"), "{answers}");
    // Still open: a third request on the same connection.
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let third = read_until(&mut stream, |s| s.ends_with("pong")).await;
    assert!(third.starts_with("HTTP/1.1 200 OK"), "{third}");
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let huge = format!(
        "GET /events?channel=c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    // The server may answer and close before reading it all.
    let _ = stream.write_all(huge.as_bytes()).await;
    let answer = read_until(&mut stream, |s| s.contains("\r\n\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
}

#[tokio::test]
async fn silent_connections_are_closed_after_the_head_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new().head_timeout(Duration::from_millis(100));
    tokio::spawn(server.serve(listener, Router::new(), std::future::pending()));
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /events HTTP/1.1\r\n").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "closed without an answer: {read:?}"
    );
}

/// Sends `request` for a stream to a server with a 100 ms write timeout, stops reading, and
/// publishes until the socket buffers are full: the stream must be released.
async fn a_stalled_stream_is_released(request: &[u8], what: &str) {
    let mut config = realtime_core::ManagerConfig::default();
    // Far more than this test publishes: only the write timeout can end the stream.
    config.client_buffer = 100_000;
    let manager = Manager::builder().config(config).build().unwrap();
    let sse = SseHandler::builder(manager.clone()).build().unwrap();
    let app = Router::new().route("/events", sse.get());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new().write_timeout(Duration::from_millis(100));
    tokio::spawn(server.serve(listener, app, std::future::pending()));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while manager.connection_count() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The client reads nothing from here on; the socket buffers fill and a write blocks.
    let payload = "x".repeat(64 * 1024);
    for _ in 0..200 {
        if manager.connection_count() == 0 {
            break;
        }
        manager
            .publish(PublishRequest::new("c", payload.clone()))
            .await
            .unwrap();
    }
    while manager.connection_count() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: a stalled stream is still held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(stream);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    a_stalled_stream_is_released(
        b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        "lean path",
    )
    .await;
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let manager = Manager::builder().build().unwrap();
    let (addr, stop) = start(&manager).await;
    TcpStream::connect(addr).await.unwrap();
    stop.send(()).unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while TcpStream::connect(addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A keep-alive connection served by hyper that sends nothing after its first request is
/// closed after the head timeout: idle clients cannot hold descriptors forever.
#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_head_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/ping", get(|| async { "pong" }));
    let server = Server::new().head_timeout(Duration::from_millis(200));
    tokio::spawn(server.serve(listener, app, std::future::pending()));
    let mut stream = send(addr, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_until(&mut stream, |s| s.ends_with("pong")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut rest = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(_))),
        "the idle connection was not closed: {read:?}"
    );
}

/// A stream served by hyper (the client did not send `Accept: text/event-stream`) to a
/// client that stops reading is released after the write timeout too.
#[tokio::test]
async fn a_stalled_stream_served_by_hyper_is_released_after_the_write_timeout() {
    a_stalled_stream_is_released(
        b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\n\r\n",
        "served by hyper",
    )
    .await;
}

/// An HTTP/1.1 request without `Host` is refused with a JSON 400, on either path.
#[tokio::test]
async fn a_request_without_host_is_refused() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    for request in [
        &b"GET /events?channel=c HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n"[..],
        b"GET /ping HTTP/1.1\r\n\r\n",
    ] {
        let mut stream = send(addr, request).await;
        let answer = read_until(&mut stream, |_| false).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
    }
    assert_eq!(manager.connection_count(), 0);
}

/// A client that sends its request and half-closes (`nc -N`; RFC 9112 §9.6) still gets its
/// answer, on either path — also from a handler that takes a while (hyper without
/// `half_close` dropped the request when it read the end of the stream: the demo answered 8
/// of 100 such publishes).
#[tokio::test]
async fn a_half_closed_request_is_answered() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = send(addr, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").await;
    stream.shutdown().await.unwrap();
    let answer = read_until(&mut stream, |s| s.ends_with("pong")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut stream = send(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    stream.shutdown().await.unwrap();
    let answer = read_until(&mut stream, |s| s.ends_with("hello")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut stream = send(
        addr,
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    stream.shutdown().await.unwrap();
    let answer = read_until(&mut stream, |s| s.ends_with("hello")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut stream = send(
        addr,
        b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    stream.shutdown().await.unwrap();
    let answer = read_until(&mut stream, |s| s.contains(": connected")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A client that streams bytes at an event stream is cut, not read forever.
#[tokio::test]
async fn a_client_sending_data_on_an_event_stream_is_cut() {
    let manager = Manager::builder().build().unwrap();
    let (addr, _stop) = start(&manager).await;
    let mut stream = send(
        addr,
        b"GET /events?channel=c HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    read_until(&mut stream, |s| s.contains(": connected")).await;
    let junk = vec![b'j'; 64 * 1024];
    let deadline = tokio::time::Instant::now() + DEADLINE;
    // Writing fails once the server has closed the connection.
    while stream.write_all(&junk).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still reading the junk"
        );
    }
    while manager.connection_count() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream is still held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
