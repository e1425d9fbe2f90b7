//! Clients that do not play along: one that never reads, one that sends a message in many
//! tiny fragments, one that closes first, and `HEAD` requests.

use std::time::Duration;

use futures_util::SinkExt;
use realtime_core::PublishRequest;
use realtime_http::ws::close_code;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::client::{DEADLINE, next_json, next_message, open_ws};
use super::{ALLOWED_ORIGIN, Server};

/// Polls until the server holds no client, or panics after [`DEADLINE`] with `what`.
async fn until_no_client(server: &Server, what: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.manager.connection_count() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls until the server holds `n` clients.
async fn until_clients(server: &Server, n: usize) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.manager.connection_count() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} clients, the server holds {}",
            server.manager.connection_count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the server still holds its end of `client`'s connection open (Linux: read from
/// `/proc/net/tcp`; elsewhere this says `false`).
fn server_end_open(client: &TcpStream) -> bool {
    let (Ok(local), Ok(peer)) = (client.local_addr(), client.peer_addr()) else {
        return false;
    };
    let hex = |address: std::net::SocketAddr| match address {
        std::net::SocketAddr::V4(v4) => {
            format!(
                "{:08X}:{:04X}",
                u32::from_le_bytes(v4.ip().octets()),
                v4.port()
            )
        }
        std::net::SocketAddr::V6(_) => String::new(),
    };
    let (server_side, client_side) = (hex(peer), hex(local));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Local, remote, state (01: established).
        fields.len() > 3
            && fields[1] == server_side
            && fields[2] == client_side
            && fields[3] == "01"
    })
}

/// Polls until the server has let go of `client`'s connection (which never reads).
async fn until_server_lets_go(client: &TcpStream, what: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server_end_open(client) {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A connection with a small receive buffer that sends `request` and never reads.
async fn never_reading(server: &Server, request: &str) -> TcpStream {
    let address = server
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", server.base));
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    socket
        .set_recv_buffer_size(4096)
        .unwrap_or_else(|e| panic!("receive buffer: {e}"));
    let mut stream = socket
        .connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    stream
}

/// Publishes 8 MiB on `channel`, in 32 KiB events: more than any socket buffers hold.
async fn flood(server: &Server, channel: &str) {
    let data = "x".repeat(32 * 1024);
    for _ in 0..256 {
        server
            .manager
            .publish(PublishRequest::new(channel, data.clone()))
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
    }
}

/// An event stream whose client never reads: once the socket is full, the server cuts it
/// within the write timeout, releases its subscription and connection slot, and lets go of
/// the socket — while the client still holds it open.
pub async fn sse_never_reading_client(server: &Server) {
    let request = "GET /events?channel=flood HTTP/1.1\r\nhost: test\r\n\r\n";
    let held = never_reading(server, request).await;
    until_clients(server, 1).await;
    flood(server, "flood").await;
    until_no_client(server, "a client that never reads is released").await;
    until_server_lets_go(&held, "the server closes (or the kernel aborts) its socket").await;
    drop(held);
}

/// The same over WebSocket: upgraded, then never read.
pub async fn ws_never_reading_client(server: &Server) {
    let request = format!(
        "GET /ws?topics=flood HTTP/1.1\r\nhost: test\r\norigin: {ALLOWED_ORIGIN}\r\n\
         upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    let held = never_reading(server, &request).await;
    until_clients(server, 1).await;
    flood(server, "flood").await;
    until_no_client(server, "a WebSocket client that never reads is released").await;
    until_server_lets_go(&held, "the server closes (or the kernel aborts) its socket").await;
    drop(held);
}

/// A message in many one-byte fragments is one message (`ping` → `pong`); one over the read
/// limit, however fragmented, closes with 1009.
pub async fn ws_tiny_fragments(server: &Server) {
    let mut socket = open_ws(&server.ws("topics=a"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    next_json(&mut socket).await;
    send_fragmented(&mut socket, br#"{"type":"ping"}"#).await;
    assert_eq!(next_json(&mut socket).await["type"], "pong");
    let mut over = Vec::from(&br#"{"type":"ping","pad":""#[..]);
    over.resize(2048, b' ');
    send_fragmented(&mut socket, &over).await;
    assert_eq!(
        super::client::close_code(&mut socket).await,
        Some(close_code::TOO_BIG)
    );
}

/// Sends `text` as one text message in one-byte frames, written raw (tungstenite's client
/// does not fragment).
async fn send_fragmented(socket: &mut super::client::Socket, text: &[u8]) {
    let mut frames = Vec::new();
    for (i, byte) in text.iter().enumerate() {
        let fin = if i + 1 == text.len() { 0x80 } else { 0 };
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        // Masked with a zero key, as a client must mask.
        frames.extend_from_slice(&[fin | opcode, 0x81, 0, 0, 0, 0, *byte]);
    }
    let stream = match socket.get_mut() {
        tokio_tungstenite::MaybeTlsStream::Plain(stream) => stream,
        _ => panic!("a plain TCP socket"),
    };
    // The server may close before all is written (that is what is tested): ignore errors.
    let _ = stream.write_all(&frames).await;
    let _ = stream.flush().await;
}

/// The client closes first: the server answers with a close frame and releases the client.
pub async fn ws_client_closes(server: &Server) {
    let mut socket = open_ws(&server.ws("topics=a"), Some(ALLOWED_ORIGIN))
        .await
        .unwrap_or_else(|e| panic!("upgrade: {e:?}"));
    next_json(&mut socket).await;
    until_clients(server, 1).await;
    socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    match next_message(&mut socket).await {
        Message::Close(_) => {}
        other => panic!("expected the server's close, got {other:?}"),
    }
    until_no_client(server, "a client that closed is released").await;
}

/// `HEAD` is answered as `GET` is, without a body: the stream's headers, or the same error
/// status; on the WebSocket path, 426. It holds nothing open: it is answered even when every
/// connection slot is taken.
pub async fn head_requests(server: &Server) {
    let mut held = Vec::new();
    for _ in 0..super::Setup::MAX_CONNECTIONS {
        let mut stream = super::client::open_sse(&server.sse("channel=full"), None)
            .await
            .unwrap_or_else(|e| panic!("open: {e:?}"));
        stream.until_connected().await;
        held.push(stream);
    }
    let client = reqwest::Client::new();
    let head = |url: String| {
        let request = client.head(url).header("origin", ALLOWED_ORIGIN);
        async move {
            tokio::time::timeout(DEADLINE, request.send())
                .await
                .unwrap_or_else(|_| panic!("no answer to HEAD"))
                .unwrap_or_else(|e| panic!("HEAD: {e}"))
        }
    };
    let stream = head(server.sse("channel=a")).await;
    assert_eq!(stream.status().as_u16(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let refused = head(server.sse("channel=bad*")).await;
    assert_eq!(refused.status().as_u16(), 400);
    let ws = head(server.ws("topics=a").replacen("ws://", "http://", 1)).await;
    assert_eq!(ws.status().as_u16(), 426);
    drop(held);
    until_no_client(server, "a HEAD holds no client").await;
}
