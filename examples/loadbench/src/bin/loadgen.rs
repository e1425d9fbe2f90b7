//! The load generator of `cargo xtask bench`.
//!
//! `loadgen subscribe --url http://H:P --transport sse|ws --clients N [--sources K] [--source-base B]`
//!   opens N connections spread over 127.0.0.B … 127.0.0.(B+K-1), prints `connected N F`
//!   (connected, failed), counts what arrives until its standard input closes, then prints one
//!   JSON report line.
//! `loadgen publish --url http://H:P --rate R --seconds S [--payload BYTES]`
//!   publishes R events/s for S seconds over one keep-alive connection and prints a JSON line.
//!
//! Payloads are `t=<send time, unix ns> s=<sequence> p=<padding>`, so both the project's
//! frames and the baseline's carry the send time to measure latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use std::cell::RefCell;

use realtime_loadbench::scan::{SseScanner, WsFrame, WsScanner, client_frame};
use realtime_loadbench::{Histogram, MAX_PUBLISHERS, Options, Transport, parse_payload};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

#[derive(Default)]
struct Totals {
    received: AtomicU64,
    duplicates: AtomicU64,
    reconnects: AtomicU64,
    histogram: Histogram,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

impl Totals {
    /// Counts one delivery; `last_seq` holds the newest sequence seen from each publisher.
    fn record(&self, payload: &[u8], last_seq: &mut [Option<u64>; MAX_PUBLISHERS]) {
        let Some((sent_ns, publisher, seq)) = parse_payload(payload) else {
            return;
        };
        let Some(last) = last_seq.get_mut(publisher) else {
            return;
        };
        if last.is_some_and(|last| seq <= last) {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(seq);
        self.received.fetch_add(1, Ordering::Relaxed);
        self.histogram
            .record(now_ns().saturating_sub(sent_ns) / 1_000);
    }
}

async fn connect_from(source: u8, target: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, source], 0)))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

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
    let request = format!(
        "GET /ws?topics={} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: bG9hZGdlbi1zdWJzY3JpYmU=\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.channel, target.host
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

async fn subscribe(options: Options) -> Result<(), String> {
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

/// Publishes from `options.publishers` connections at once, each at its share of the rate, so
/// the offered load does not wait on one request at a time.
async fn publish(options: Options) -> Result<(), String> {
    let publishers = options.publishers.max(1);
    let mut tasks = Vec::new();
    for publisher in 0..publishers {
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            publish_from(&options, publisher, publishers).await
        }));
    }
    let start = Instant::now();
    let mut published = 0;
    for task in tasks {
        published += task.await.map_err(|e| e.to_string())??;
    }
    let seconds = start.elapsed().as_secs_f64();
    print_line(&format!("published={published} seconds={seconds:.3}"));
    Ok(())
}

/// Requests one publishing connection keeps in flight (HTTP/1.1 pipelining), so the offered
/// rate does not wait on each round trip.
const PIPELINE_DEPTH: u32 = 32;

/// One publishing connection; its sequence numbers are its own (`k=` names it). Requests are
/// pipelined; a reader task counts the answers.
async fn publish_from(
    options: &Options,
    publisher: usize,
    publishers: usize,
) -> Result<u64, String> {
    let target = options.target()?;
    let stream = connect_from(options.source_base, target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (reader, mut writer) = stream.into_split();
    let window = Arc::new(Semaphore::new(PIPELINE_DEPTH as usize));
    let answered = Arc::new(AtomicU64::new(0));
    let responses = tokio::spawn(read_responses(reader, window.clone(), answered.clone()));
    let padding = "x".repeat(options.payload.saturating_sub(48));
    let rate = (options.rate as f64 / publishers as f64).max(0.1);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut sent = 0u64;
    let failed = |responses: tokio::task::JoinHandle<Result<(), String>>| async move {
        match responses.await {
            Ok(Err(message)) => message,
            _ => "the response reader stopped".to_owned(),
        }
    };
    while start.elapsed() < Duration::from_secs_f64(options.seconds) {
        tick.tick().await;
        let Ok(permit) = window.acquire().await else {
            return Err(failed(responses).await);
        };
        permit.forget();
        let seq = options.seq_base + sent;
        let body = format!(
            r#"{{"channel":"{}","data":"t={} k={publisher} s={seq} p={padding}"}}"#,
            options.channel,
            now_ns()
        );
        let request = format!(
            "POST /publish HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            options.host(),
            body.len()
        );
        writer
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("publish: {e}"))?;
        sent += 1;
    }
    // Every permit back means every request has its answer.
    if window.acquire_many(PIPELINE_DEPTH).await.is_err() {
        return Err(failed(responses).await);
    }
    responses.abort();
    Ok(answered.load(Ordering::Relaxed))
}

/// Reads pipelined `POST /publish` answers in order, returning a window permit for each; on a
/// refusal or a closed connection it closes the window (stopping the writer) and says why.
async fn read_responses(
    reader: tokio::net::tcp::OwnedReadHalf,
    window: Arc<Semaphore>,
    answered: Arc<AtomicU64>,
) -> Result<(), String> {
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    let outcome = loop {
        let (mut length, mut status_ok) = (0usize, false);
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    line = e.to_string();
                    break;
                }
            }
            status_ok |= line.starts_with("HTTP/1.1 200");
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        if line != "\r\n" {
            break Err(format!("the publishing connection closed: {}", line.trim()));
        }
        let mut body = vec![0u8; length];
        if let Err(e) = reader.read_exact(&mut body).await {
            break Err(e.to_string());
        }
        if !status_ok {
            break Err(format!(
                "publish refused: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        answered.fetch_add(1, Ordering::Relaxed);
        window.add_permits(1);
    };
    window.close();
    outcome
}

#[allow(clippy::print_stdout)]
fn print_line(line: &str) {
    println!("{line}");
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = Options::parse(&args).and_then(|(command, options)| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        match command.as_str() {
            "subscribe" => runtime.block_on(subscribe(options)),
            "publish" => runtime.block_on(publish(options)),
            other => Err(format!("unknown command {other:?}")),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
