//! Writes the router's answer to an event-stream request straight to the socket.

use std::io::{self, IoSlice, Write as _};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body::Body as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tower_service::Service as _;

/// Answers `request` with `router` and writes the response; see [`crate::Server`].
pub(crate) async fn event_stream(
    mut stream: TcpStream,
    request: Request<Body>,
    mut router: Router,
    write_timeout: Duration,
) {
    let http10 = request.version() == http::Version::HTTP_10;
    // The router is always ready (its error type is `Infallible`).
    let Ok(()) = std::future::poll_fn(|cx| {
        tower_service::Service::<Request<Body>>::poll_ready(&mut router, cx)
    })
    .await;
    let Ok(response) = router.call(request).await;
    let (parts, body) = response.into_parts();
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    let length = body.size_hint().exact();
    let framing = match (bodiless, length) {
        (true, _) => Framing::None,
        (false, Some(length)) => Framing::Length(length),
        (false, None) if http10 => Framing::UntilClose,
        (false, None) => Framing::Chunked,
    };
    let head = response_head(parts.status, &parts.headers, framing);
    if timed(write_timeout, stream.write_all(&head)).await.is_err() || bodiless {
        return finish(stream).await;
    }
    let chunked = framing == Framing::Chunked;
    let mut body = std::pin::pin!(body);
    // Bytes the client sent after its request (it has nothing to send on an event stream).
    let mut received = 0usize;
    loop {
        // The body first: while frames are ready the socket's read side is not looked at.
        let frame = std::future::poll_fn(|cx| match body.as_mut().poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(Some(frame)),
            Poll::Pending => poll_peer_gone(&stream, &mut received, cx).map(|()| None),
        })
        .await;
        let Some(frame) = frame else {
            return;
        };
        let data = match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
            // A body error: close without the last chunk, so the client sees a cut stream.
            Some(Err(error)) => {
                tracing::debug!(%error, "event stream body failed");
                return;
            }
            None => break,
        };
        if write_data(&mut stream, &data, chunked, write_timeout)
            .await
            .is_err()
        {
            return;
        }
    }
    if chunked {
        let _ = timed(write_timeout, stream.write_all(b"0\r\n\r\n")).await;
    }
    finish(stream).await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The status line and headers; the framing headers and `Connection` are the server's.
fn response_head(status: StatusCode, headers: &http::HeaderMap, framing: Framing) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    let reason = status.canonical_reason().unwrap_or("");
    let _ = write!(head, "HTTP/1.1 {} {reason}\r\n", status.as_str());
    for (name, value) in headers {
        if [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::CONTENT_LENGTH,
        ]
        .contains(name)
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        let _ = write!(
            head,
            "date: {}\r\n",
            httpdate::fmt_http_date(std::time::SystemTime::now())
        );
    }
    match framing {
        Framing::Length(length) => {
            let _ = write!(head, "content-length: {length}\r\n");
        }
        Framing::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None | Framing::UntilClose => {}
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// One body frame: as a chunk (size line, data, CRLF in one vectored write) or as is. The
/// socket is tried at once; only a write that would block waits, for `timeout` at most.
async fn write_data(
    stream: &mut TcpStream,
    data: &Bytes,
    chunked: bool,
    timeout: Duration,
) -> io::Result<()> {
    let mut size = [0u8; 20];
    let size_len = if chunked {
        let mut cursor = &mut size[..];
        write!(cursor, "{:x}\r\n", data.len())?;
        20 - cursor.len()
    } else {
        0
    };
    let trailer: &[u8] = if chunked { b"\r\n" } else { b"" };
    let mut slices = [
        IoSlice::new(&size[..size_len]),
        IoSlice::new(data),
        IoSlice::new(trailer),
    ];
    let mut remaining = &mut slices[..];
    match stream.try_write_vectored(remaining) {
        Ok(written) => IoSlice::advance_slices(&mut remaining, written),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
        Err(error) => return Err(error),
    }
    if remaining.iter().all(|slice| slice.is_empty()) {
        return Ok(());
    }
    timed(timeout, async {
        while !remaining.is_empty() {
            let written = stream.write_vectored(remaining).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut remaining, written);
        }
        Ok(())
    })
    .await
}

/// A write that gives up after `timeout` (a client that stopped reading).
async fn timed(
    timeout: Duration,
    write: impl std::future::Future<Output = io::Result<()>>,
) -> io::Result<()> {
    tokio::time::timeout(timeout, write)
        .await
        .unwrap_or_else(|_| {
            tracing::debug!("event stream write timed out");
            metrics::counter!(realtime_core::metrics::WRITE_TIMEOUTS, "transport" => "sse")
                .increment(1);
            Err(io::ErrorKind::TimedOut.into())
        })
}

/// What a client may send on an event stream before it counts as misbehaving (a pipelined
/// request or stray line breaks fit).
const MAX_STRAY_BYTES: usize = 16 * 1024;

/// Ready when the client has closed its side (or the socket failed), or has sent more than
/// [`MAX_STRAY_BYTES`] since its request: a client streaming bytes at an event stream is cut
/// rather than read forever. Bytes below that are discarded.
fn poll_peer_gone(stream: &TcpStream, received: &mut usize, cx: &mut Context<'_>) -> Poll<()> {
    let mut scratch = [0u8; 4096];
    loop {
        match stream.poll_read_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) => {}
        }
        match stream.try_read(&mut scratch) {
            Ok(0) => return Poll::Ready(()),
            Ok(n) => {
                *received += n;
                if *received > MAX_STRAY_BYTES {
                    tracing::debug!(
                        bytes = *received,
                        "client sends data on an event stream; closing"
                    );
                    return Poll::Ready(());
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return Poll::Ready(()),
        }
    }
}

async fn finish(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_carry_the_framing_and_close() {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        headers.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        headers.insert(
            header::DATE,
            "Sun, 29 Nov 2026 19:00:00 GMT".parse().unwrap(),
        );
        let head =
            String::from_utf8(response_head(StatusCode::OK, &headers, Framing::Chunked)).unwrap();
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ndate: Sun, 29 Nov 2026 19:00:00 GMT\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        let head = String::from_utf8(response_head(
            StatusCode::BAD_REQUEST,
            &headers,
            Framing::Length(7),
        ))
        .unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-length: 7\r\n"), "{head}");
        assert!(!head.contains("keep-alive"), "{head}");
    }
}
