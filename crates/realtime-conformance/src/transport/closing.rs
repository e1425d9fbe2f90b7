//! How a WebSocket connection ends when the client misbehaves: the close code reaches a
//! client that is still sending (the server reads and discards what follows its close
//! frame; closing a socket with unread data resets the connection, and the client's stack
//! then throws the close frame away: a browser sees 1006).

use realtime_http::ws::close_code;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::client::DEADLINE;
use super::{ALLOWED_ORIGIN, Server};

/// A 12 MiB text frame (the read limit is 1 KiB) written in one go — more than the kernel's
/// buffers hold, so the client is still sending when the server closes: the client sees
/// 1009.
pub async fn ws_big_frame_sees_1009(server: &Server) {
    let mut stream = upgraded(server).await;
    let payload = vec![b'x'; 12 << 20];
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    // Masked with a zero key, as a client must mask.
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(&payload);
    // The server stops taking the frame as data after its header: what it still reads, it
    // discards. A reset would fail the write or the read below.
    let written = tokio::time::timeout(DEADLINE, stream.write_all(&frame)).await;
    assert!(
        matches!(written, Ok(Ok(()))),
        "the frame is read (and discarded) to its end: {written:?}"
    );
    assert_eq!(close_code_of(&mut stream).await, Some(close_code::TOO_BIG));
}

/// A frame that breaks the protocol (unmasked, from a client) ends with 1002, not a bare
/// end of stream.
pub async fn ws_protocol_violation_sees_1002(server: &Server) {
    let mut stream = upgraded(server).await;
    stream
        .write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    assert_eq!(close_code_of(&mut stream).await, Some(close_code::PROTOCOL));
}

/// A `Sec-WebSocket-Key` that is not the base64 of 16 bytes is refused: 400.
pub async fn ws_malformed_key_is_refused(server: &Server) {
    for key in [
        "AAAA",
        "dGhlIHNhbXBsZSBub25jZQ",
        "not base64 at all!!!!!!!",
        "",
    ] {
        let (head, _) = request(server, key).await;
        assert!(head.starts_with("HTTP/1.1 400"), "key {key:?}: {head}");
        assert!(head.contains("invalid_upgrade"), "key {key:?}: {head}");
    }
}

/// A raw upgraded connection to `/ws?topics=a`, past the response head.
async fn upgraded(server: &Server) -> TcpStream {
    let (head, stream) = request(server, "dGhlIHNhbXBsZSBub25jZQ==").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Sends an upgrade request with `key`; returns the response head (with the start of the
/// body, for an error) and the connection.
async fn request(server: &Server, key: &str) -> (String, TcpStream) {
    let address = server
        .base
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", server.base));
    let socket = TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    // Small buffers: the frame stays in flight, not parked in the kernel.
    socket
        .set_send_buffer_size(64 * 1024)
        .unwrap_or_else(|e| panic!("send buffer: {e}"));
    let mut stream = socket
        .connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let request = format!(
        "GET /ws?topics=a HTTP/1.1\r\nhost: test\r\norigin: {ALLOWED_ORIGIN}\r\n\
         upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\n\
         sec-websocket-key: {key}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    // The head ends with an empty line; read it byte by byte so no frame is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = tokio::time::timeout(DEADLINE, stream.read_u8())
            .await
            .unwrap_or_else(|_| panic!("no response head"))
            .unwrap_or_else(|e| panic!("response head: {e}"));
        head.push(byte);
    }
    let mut head = String::from_utf8_lossy(&head).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        // An error: its JSON body follows (read what arrives within a moment).
        let mut body = [0u8; 512];
        if let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_secs(1), stream.read(&mut body)).await
        {
            head.push_str(&String::from_utf8_lossy(&body[..n]));
        }
    }
    (head, stream)
}

/// Reads the server's frames until its close frame: its code (`None` if the connection
/// ended without one, or was reset).
async fn close_code_of(stream: &mut TcpStream) -> Option<u16> {
    let read = async {
        loop {
            let first = stream.read_u8().await.ok()?;
            let length = match stream.read_u8().await.ok()? & 0x7f {
                126 => u64::from(stream.read_u16().await.ok()?),
                127 => stream.read_u64().await.ok()?,
                n => u64::from(n),
            };
            let mut payload = vec![0; usize::try_from(length).ok()?];
            stream.read_exact(&mut payload).await.ok()?;
            if first & 0x0f == 0x8 {
                return Some(u16::from_be_bytes([*payload.first()?, *payload.get(1)?]));
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.ok().flatten()
}

/// Sends `request` raw and returns what the server answers until it closes (at most 64 KiB,
/// within the deadline); with `half_close`, shuts the client's side after sending.
async fn raw_exchange(server: &Server, request: &str, half_close: bool) -> String {
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("request: {e}"));
    if half_close {
        stream
            .shutdown()
            .await
            .unwrap_or_else(|e| panic!("shutdown: {e}"));
    }
    let mut answer = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        while answer.len() < 64 * 1024 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
            // One answer is enough: the status line and, for an error, its JSON body.
            if answer.ends_with(b"}") {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DEADLINE, read).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// A client that sends its request and shuts its side (RFC 9112 §9.6 lets the server finish
/// the response) is answered, not dropped.
pub async fn half_closed_requests_are_answered(server: &Server) {
    let upgrade_required =
        format!("GET /ws HTTP/1.1\r\nhost: test\r\norigin: {ALLOWED_ORIGIN}\r\n\r\n");
    for (request, status) in [
        ("GET /events HTTP/1.1\r\nhost: test\r\n\r\n", "HTTP/1.1 400"),
        (upgrade_required.as_str(), "HTTP/1.1 426"),
    ] {
        let answer = raw_exchange(server, request, true).await;
        assert!(answer.starts_with(status), "{request:?}: {answer:?}");
    }
}

/// Two `Host` headers: 400 (RFC 9112 §3.2), on both endpoints.
pub async fn two_host_headers_are_refused(server: &Server) {
    for path in ["/events?channel=a", "/ws?topics=a"] {
        let request = format!("GET {path} HTTP/1.1\r\nhost: a.example\r\nhost: b.example\r\n\r\n");
        let answer = raw_exchange(server, &request, false).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer:?}");
    }
}
