//! `loadgen subscribe`: subscribers that scan what arrives in place.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use realtime_loadbench::scan::{SseScanner, WsFrame, WsScanner, client_frame};
use realtime_loadbench::{MAX_PUBLISHERS, Options, Transport};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::{Totals, connect_from, print_line};

/// Where one subscriber connects.
#[derive(Clone)]
struct Target {
    source: u8,
    addr: std::net::SocketAddr,
    host: String,
    channel: String,
}

thread_local! {
    /// One read buffer for every connection: the runtime has one thread and each read is
    /// scanned before its task yields, so connections need no buffer of their own.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// Waits until the socket is readable, then hands what it holds to `scan` (a few reads at
/// most, so one busy connection does not starve the others). Returns false at end of stream,
/// on an error, or when `scan` returns false.
async fn read_some(stream: &TcpStream, scan: &mut impl FnMut(&[u8]) -> bool) -> bool {
    if stream.readable().await.is_err() {
        return false;
    }
    READ_BUFFER.with_borrow_mut(|buffer| {
        for _ in 0..4 {
            match stream.try_read(buffer) {
                Ok(0) => return false,
                Ok(n) if !scan(&buffer[..n]) => return false,
                Ok(n) if n < buffer.len() => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        true
    })
}

/// Reads an HTTP response head; returns it and the bytes that came after it.
async fn read_head(stream: &TcpStream) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    loop {
        let open = read_some(stream, &mut |bytes| {
            head.extend_from_slice(bytes);
            true
        })
        .await;
        if let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") {
            let rest = head.split_off(end + 4);
            return Some((String::from_utf8_lossy(&head).into_owned(), rest));
        }
        if !open || head.len() > 64 * 1024 {
            return None;
        }
    }
}

/// What a subscriber keeps across reconnections.
struct Resume {
    last_id: Option<Vec<u8>>,
    last_seq: [Option<u64>; MAX_PUBLISHERS],
}

/// One subscriber. When the server ends its stream (a slow-consumer close), it reconnects and
/// resumes from the last id it saw (`Last-Event-ID`, or `last_event_ids` over WebSocket), as a
/// browser would; a refused or failed connection ends it.
async fn client(
    target: Target,
    transport: Transport,
    ready: tokio::sync::oneshot::Sender<bool>,
    totals: Arc<Totals>,
) {
    let mut ready = Some(ready);
    let mut resume = Resume {
        last_id: None,
        last_seq: [None; MAX_PUBLISHERS],
    };
    while let Ok(stream) = connect_from(target.source, target.addr).await {
        let accepted = match transport {
            Transport::Sse => sse_session(stream, &target, &mut resume, &totals, &mut ready).await,
            Transport::Ws => ws_session(stream, &target, &mut resume, &totals, &mut ready).await,
        };
        if !accepted {
            break;
        }
        totals.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(false);
    }
}

/// Sends the request, reads the response head and reports whether its status is `status`.
async fn open(
    stream: &mut TcpStream,
    request: &str,
    status: &str,
    ready: &mut Option<tokio::sync::oneshot::Sender<bool>>,
) -> Option<(String, Vec<u8>)> {
    stream.write_all(request.as_bytes()).await.ok()?;
    let (head, rest) = read_head(stream).await?;
    let ok = head.starts_with(status);
    if let Some(ready) = ready.take() {
        let _ = ready.send(ok);
    }
    ok.then_some((head, rest))
}

/// One SSE connection: raw HTTP/1.1, scanned in place. Returns whether the server accepted it.
async fn sse_session(
    mut stream: TcpStream,
    target: &Target,
    resume: &mut Resume,
    totals: &Totals,
    ready: &mut Option<tokio::sync::oneshot::Sender<bool>>,
) -> bool {
    let last_event_id = resume
        .last_id
        .as_ref()
        .map(|id| format!("Last-Event-ID: {}\r\n", String::from_utf8_lossy(id)))
        .unwrap_or_default();
    let request = format!(
        "GET /events?channel={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{last_event_id}\r\n",
        target.channel, target.host
    );
    let Some((head, rest)) = open(&mut stream, &request, "HTTP/1.1 200", ready).await else {
        return false;
    };
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let mut scanner = SseScanner::new(chunked);
    let last_seq = &mut resume.last_seq;
    let mut on_event = |data: &[u8]| totals.record(data, last_seq);
    if scanner.feed(&rest, &mut on_event) {
        while read_some(&stream, &mut |bytes| scanner.feed(bytes, &mut on_event)).await {}
    }
    if let Some(id) = scanner.last_id() {
        resume.last_id = Some(id.to_vec());
    }
    true
}

/// One WebSocket connection: a raw upgrade, frames scanned in place, pings answered.
async fn ws_session(
    mut stream: TcpStream,
    target: &Target,
    resume: &mut Resume,
    totals: &Totals,
    ready: &mut Option<tokio::sync::oneshot::Sender<bool>>,
) -> bool {
    // A resuming client joins its topic by the subscribe message with its last id only: with
    // the topic in the URL too, it would first receive live events the replay then repeats.
    let path = match resume.last_id {
        Some(_) => "/ws".to_owned(),
        None => format!("/ws?topics={}", target.channel),
    };
    // The key is 16 bytes in base64, as RFC 6455 asks (actix-web refuses any other).
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bG9hZGdlbi1zdWJzY3JpYg==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.host
    );
    let Some((_, rest)) = open(&mut stream, &request, "HTTP/1.1 101", ready).await else {
        return false;
    };
    if let Some(id) = &resume.last_id {
        let message = format!(
            r#"{{"type":"subscribe","topics":["{0}"],"last_event_ids":{{"{0}":"{1}"}}}}"#,
            target.channel,
            String::from_utf8_lossy(id)
        );
        if stream
            .write_all(&client_frame(0x1, message.as_bytes()))
            .await
            .is_err()
        {
            return true;
        }
    }
    let mut scanner = WsScanner::default();
    let mut state = WsState {
        resume,
        totals,
        replies: Vec::new(),
        closed: false,
    };
    let mut open = scanner.feed(&rest, &mut |f| state.frame(f)).is_ok();
    while open && !state.closed {
        open = read_some(&stream, &mut |bytes| {
            scanner.feed(bytes, &mut |f| state.frame(f)).is_ok()
        })
        .await;
        if !state.replies.is_empty() {
            open &= stream.write_all(&state.replies).await.is_ok();
            state.replies.clear();
        }
    }
    true
}

/// A WebSocket subscriber's per-frame work.
struct WsState<'a> {
    resume: &'a mut Resume,
    totals: &'a Totals,
    /// Pongs to send once the current read is scanned.
    replies: Vec<u8>,
    closed: bool,
}

impl WsState<'_> {
    fn frame(&mut self, frame: WsFrame<'_>) {
        match frame {
            WsFrame::Message(text) => {
                if let Some(id) = message_id(text) {
                    let last = self.resume.last_id.get_or_insert_with(Vec::new);
                    last.clear();
                    last.extend_from_slice(id);
                }
                self.totals.record(text, &mut self.resume.last_seq);
            }
            WsFrame::Ping(payload) => self.replies.extend(client_frame(0xa, payload)),
            WsFrame::Close => self.closed = true,
        }
    }
}

/// The `"id":"…"` of a realtime WebSocket event message (the baseline's frames have none).
fn message_id(text: &[u8]) -> Option<&[u8]> {
    let at = memchr::memmem::find(text, b"\"id\":\"")? + 6;
    let len = memchr::memchr(b'"', &text[at..])?;
    Some(&text[at..at + len])
}

pub(crate) async fn subscribe(options: Options) -> Result<(), String> {
    let target = options.target()?;
    let totals = Arc::new(Totals::default());
    let gate = Arc::new(Semaphore::new(256));
    let mut waiting = Vec::with_capacity(options.clients);
    for i in 0..options.clients {
        let source = options.source_base + (i % options.sources) as u8;
        let (ready, connected) = tokio::sync::oneshot::channel();
        waiting.push(connected);
        let (totals, gate) = (totals.clone(), gate.clone());
        let (host, transport, channel) =
            (options.host(), options.transport, options.channel.clone());
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let (ready_inner, done) = tokio::sync::oneshot::channel();
            let target = Target {
                source,
                addr: target,
                host,
                channel,
            };
            let task = tokio::spawn(client(target, transport, ready_inner, totals));
            let _ = ready.send(done.await.unwrap_or(false));
            drop(permit);
            let _ = task.await;
        });
    }
    let mut connected = 0;
    for outcome in waiting {
        if outcome.await.unwrap_or(false) {
            connected += 1;
        }
    }
    print_line(&format!(
        "connected {connected} {}",
        options.clients - connected
    ));
    // Each `report` line on standard input prints the counts since the last one and resets
    // them; end of input ends the process.
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(command)) = lines.next_line().await {
        if command.trim() != "report" {
            continue;
        }
        // Plain lines, so the orchestrator needs no JSON parser.
        print_line(&format!(
            "report connected={connected} received={} duplicates={} reconnects={}",
            totals.received.swap(0, Ordering::Relaxed),
            totals.duplicates.swap(0, Ordering::Relaxed),
            totals.reconnects.swap(0, Ordering::Relaxed),
        ));
        let counts: Vec<String> = totals.histogram.take().iter().map(u64::to_string).collect();
        print_line(&format!("histogram {}", counts.join(" ")));
    }
    Ok(())
}
