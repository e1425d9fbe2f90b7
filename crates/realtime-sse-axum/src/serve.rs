//! [`Server`]: HTTP/1.1 serving in which a long-lived event stream holds little memory.
//!
//! An event stream lives for hours and carries small frames, yet a general HTTP server keeps
//! its per-connection read and write buffers (about 16 KiB with hyper) for the whole stream.
//! `Server` reads each connection's request head itself; a request for an event stream is
//! answered by the router and written straight to the socket (chunked), holding only the
//! response body between events. Every other connection — pages, `POST`s, WebSocket
//! upgrades, malformed requests — is handed, head included, to hyper.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::Request;
use hyper::body::Incoming;
use realtime_http::PeerAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::prefixed::Prefixed;
use crate::respond;

/// The largest request head read (hyper's smallest allowed buffer limit, so both paths agree).
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The pause after a failed accept (such as running out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Headers parsed when deciding how to serve a request; more go to hyper, which allows 100.
const MAX_HEADERS: usize = 48;

/// Serves an axum [`Router`] over HTTP/1.1, writing event streams itself.
///
/// ```no_run
/// use axum::Router;
/// use realtime_core::Manager;
/// use realtime_sse_axum::{Server, SseHandler};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Manager::builder().build()?;
/// let app = Router::new().route("/events", SseHandler::builder(manager.clone()).build()?.get());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// // Ends the accept loop when it completes: Ctrl-C in a real server.
/// let shutdown = std::future::pending::<()>();
/// Server::new().serve(listener, app, shutdown).await;
/// # Ok(()) }
/// ```
///
/// # Behavior
/// - A `GET` with `Accept: text/event-stream`, no body and no upgrade is an *event-stream
///   request*: the router answers it, the response is written with `Transfer-Encoding:
///   chunked` (`Content-Length` when the body's size is known, as for an error) and
///   `Connection: close`, each body frame as one chunk in one vectored write. The connection
///   closes when the body ends, when the client closes it (noticed while idle, so the
///   subscription is released at once), or when a write does not finish within
///   [`Server::write_timeout`].
/// - Anything else is served by hyper's HTTP/1.1 connection with upgrades enabled, starting
///   with the bytes already read; so keep-alive, request bodies, WebSocket and error answers
///   (400, 431) are hyper's.
/// - A connection that has not sent a complete request head within [`Server::head_timeout`]
///   is closed (hyper applies no such limit by default) — the first head, and on a
///   keep-alive connection served by hyper every later one, so an idle client is let go.
/// - A write that makes no progress for [`Server::write_timeout`] ends the connection on
///   either path (a response, a stream or a WebSocket served by hyper included), counted in
///   `realtime_write_timeouts_total` (`transport` `sse` on the lean path, `http` on hyper's).
/// - When `shutdown` completes, no new connection is accepted; open streams end when their
///   bodies do (close the [`realtime_core::Manager`] to end them), and keep-alive connections
///   served by hyper stay until their clients close them or the runtime stops.
#[derive(Debug, Clone)]
pub struct Server {
    write_timeout: Duration,
    head_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            write_timeout: Duration::from_secs(30),
            head_timeout: Duration::from_secs(30),
        }
    }
}

impl Server {
    /// A server with the defaults.
    pub fn new() -> Self {
        Server::default()
    }

    /// How long one write of an event stream may wait for the client to read. Default 30 s;
    /// zero means the default.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        if !timeout.is_zero() {
            self.write_timeout = timeout;
        }
        self
    }

    /// How long a new connection may take to send its first request head; a client that
    /// sends nothing (or trickles a head) is disconnected then. Default 30 s; zero means the
    /// default.
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        if !timeout.is_zero() {
            self.head_timeout = timeout;
        }
        self
    }

    /// Accepts connections until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()>,
    ) {
        let server = Arc::new(self);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of files, for instance: back off briefly instead of spinning;
                        // the next accept may succeed once connections close.
                        static FAILED: realtime_core::throttle::Throttle =
                            realtime_core::throttle::Throttle::new(
                                realtime_core::throttle::WARN_EVERY,
                            );
                        if let Some(left_out) = FAILED.admit() {
                            tracing::warn!(%error, similar_since_last = left_out, "accept failed");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => return,
            };
            let (server, router) = (server.clone(), router.clone());
            tokio::spawn(async move { server.connection(stream, peer, router).await });
        }
    }

    async fn connection(&self, mut stream: TcpStream, peer: SocketAddr, router: Router) {
        let _ = stream.set_nodelay(true);
        let mut head = Vec::new();
        let read_head = async {
            loop {
                head.reserve(1024.min(MAX_HEAD_BYTES - head.len()));
                match stream.read_buf(&mut head).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
                match event_stream_request(&head) {
                    Head::Partial if head.len() < MAX_HEAD_BYTES => continue,
                    Head::Partial | Head::Other => return Some(None),
                    decided => return Some(Some(decided)),
                }
            }
        };
        let Ok(Some(request)) = tokio::time::timeout(self.head_timeout, read_head).await else {
            tracing::debug!("connection closed before a complete request head");
            return;
        };
        match request {
            Some(Head::BadHost) => {
                let body = r#"{"error":"invalid_request","message":"an HTTP/1.1 request needs one Host header"}"#;
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let write = stream.write_all(answer.as_bytes());
                let _ = tokio::time::timeout(self.write_timeout, write).await;
                let _ = stream.shutdown().await;
            }
            Some(Head::EventStream(mut request)) => {
                drop(head);
                with_peer(&mut request, peer);
                respond::event_stream(stream, request, router, self.write_timeout).await;
            }
            Some(Head::Partial | Head::Other) | None => {
                serve_with_hyper(
                    Prefixed {
                        head,
                        read: 0,
                        stream,
                        write_timeout: self.write_timeout,
                        stalled: None,
                    },
                    router,
                    peer,
                    self.head_timeout,
                )
                .await
            }
        }
    }
}

// Built once per connection and consumed at once: boxing the request would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
enum Head {
    Partial,
    EventStream(Request<Body>),
    /// An HTTP/1.1 request without the `Host` header it must carry, or any with two.
    BadHost,
    Other,
}

/// Whether `bytes` start with a complete event-stream request head, and the request if so.
fn event_stream_request(bytes: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Partial) => return Head::Partial,
        Ok(httparse::Status::Complete(_)) => {}
        Err(_) => return Head::Other,
    }
    let headers: &[httparse::Header<'_>] = parsed.headers;
    // RFC 9112 §3.2: an HTTP/1.1 request carries exactly one Host, any request at most one.
    let hosts = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .count();
    if hosts > 1 || (parsed.version == Some(1) && hosts == 0) {
        return Head::BadHost;
    }
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };
    let wants_stream = named("accept").any(|h| {
        h.value
            .windows(b"text/event-stream".len())
            .any(|w| w.eq_ignore_ascii_case(b"text/event-stream"))
    });
    let has_body = named("transfer-encoding").next().is_some()
        || named("content-length").any(|h| h.value.trim_ascii() != b"0");
    let upgrade = named("upgrade").next().is_some();
    if parsed.method != Some("GET") || !wants_stream || has_body || upgrade {
        return Head::Other;
    }
    let version = match parsed.version {
        Some(0) => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut request = Request::builder()
        .method(http::Method::GET)
        .uri(parsed.path.unwrap_or("/"))
        .version(version);
    for header in headers {
        request = request.header(header.name, header.value);
    }
    // A target or header `http` refuses goes to hyper, which answers 400.
    request
        .body(Body::empty())
        .map_or(Head::Other, Head::EventStream)
}

/// Puts the client's address where hooks and handlers look for it: [`PeerAddr`] (what the
/// other adapters provide) and axum's `ConnectInfo` (what `axum::serve` provides).
fn with_peer<B>(request: &mut Request<B>, peer: SocketAddr) {
    let extensions = request.extensions_mut();
    extensions.insert(PeerAddr(peer));
    extensions.insert(axum::extract::ConnectInfo(peer));
}

async fn serve_with_hyper(io: Prefixed, router: Router, peer: SocketAddr, head_timeout: Duration) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        with_peer(&mut request, peer);
        // A Router is always ready: calling it without `poll_ready` is allowed.
        tower_service::Service::call(&mut router.clone(), request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Without a timer hyper applies no header timeout at all: an idle keep-alive client
    // would hold its descriptor forever.
    builder
        .max_buf_size(MAX_HEAD_BYTES)
        // A client may send its request and shut its side (RFC 9112 §9.6): answer it. (The
        // cost: a stream served here whose client went away is noticed by a failed write,
        // a heartbeat at most, not by the end of its input; event streams of browsers take
        // the lean path, which notices at once.)
        .half_close(true)
        .writev(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout);
    let connection = builder
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(head: &[u8]) -> &'static str {
        match event_stream_request(head) {
            Head::Partial => "partial",
            Head::EventStream(_) => "stream",
            Head::BadHost => "bad host",
            Head::Other => "other",
        }
    }

    #[test]
    fn only_bodiless_gets_asking_for_a_stream_take_the_lean_path() {
        let get = b"GET /events?channel=a HTTP/1.1\r\nHost: x\r\nAccept: Text/Event-Stream\r\n\r\n";
        assert_eq!(kind(get), "stream");
        assert_eq!(kind(&get[..30]), "partial");
        assert_eq!(
            kind(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
            "other"
        );
        assert_eq!(
            kind(b"POST /p HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nContent-Length: 2\r\n\r\n{}"),
            "other"
        );
        assert_eq!(
            kind(b"GET /ws HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nUpgrade: websocket\r\n\r\n"),
            "other"
        );
        assert_eq!(kind(b"\x00\x01garbage\r\n\r\n"), "other");
        assert_eq!(
            kind(b"GET /events HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n"),
            "bad host"
        );
        assert_eq!(
            kind(b"POST /p HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n"),
            "bad host"
        );
    }

    #[test]
    fn the_request_keeps_target_version_and_headers() {
        let head = b"GET /events?channel=a HTTP/1.0\r\nAccept: text/event-stream\r\nLast-Event-ID: e-1\r\n\r\n";
        let Head::EventStream(request) = event_stream_request(head) else {
            panic!("not an event-stream request");
        };
        assert_eq!(request.uri(), "/events?channel=a");
        assert_eq!(request.version(), http::Version::HTTP_10);
        assert_eq!(request.headers()["last-event-id"], "e-1");
    }
}
