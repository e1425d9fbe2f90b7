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

/// One SSE subscriber. When the server ends its stream (a slow-consumer close), it reconnects
/// with `Last-Event-ID`, as a browser would; a refused or failed connection ends it.
async fn sse_client(
    target: Target,
    ready: tokio::sync::oneshot::Sender<bool>,
    totals: Arc<Totals>,
) {
    let mut ready = Some(ready);
    let mut last_id: Option<String> = None;
    let mut last_seq = [None; MAX_PUBLISHERS];
    while let Ok(stream) = connect_from(target.source, target.addr).await {
        if !sse_session(
            stream,
            &target,
            &mut last_id,
            &mut last_seq,
            &totals,
            &mut ready,
        )
        .await
        {
            break;
        }
        totals.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(false);
    }
}

/// One SSE connection: raw HTTP/1.1, chunked decoding, the core SSE decoder. Returns whether
/// the server accepted it.
async fn sse_session(
    stream: TcpStream,
    target: &Target,
    last_id: &mut Option<String>,
    last_seq: &mut [Option<u64>; MAX_PUBLISHERS],
    totals: &Totals,
    ready: &mut Option<tokio::sync::oneshot::Sender<bool>>,
) -> bool {
    let mut stream = BufReader::with_capacity(16 * 1024, stream);
    let resume = last_id
        .as_ref()
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET /events?channel={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{resume}\r\n",
        target.channel, target.host
    );
    if stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut line = String::new();
    let (mut ok, mut chunked) = (false, false);
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return false;
        }
        ok |= line.starts_with("HTTP/1.1 200");
        chunked |= line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked");
        if line == "\r\n" {
            break;
        }
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(ok);
    }
    if !ok {
        return false;
    }
    let mut decoder = realtime_core::sse::Decoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut chunk_left = 0usize;
    loop {
        let n = if chunked {
            if chunk_left == 0 {
                line.clear();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    break;
                }
                if line == "\r\n" {
                    continue;
                }
                chunk_left = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                if chunk_left == 0 {
                    break;
                }
            }
            let want = chunk_left.min(buf.len());
            match stream.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    chunk_left -= n;
                    n
                }
            }
        } else {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            }
        };
        for frame in decoder.feed(&buf[..n]) {
            if frame.id.is_some() {
                last_id.clone_from(&frame.id);
            }
            if let Some(payload) = frame.data {
                totals.record(payload.as_bytes(), last_seq);
            }
        }
    }
    true
}

/// One WebSocket subscriber. After a close it reconnects and resumes from the last id it saw.
async fn ws_client(target: Target, ready: tokio::sync::oneshot::Sender<bool>, totals: Arc<Totals>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut ready = Some(ready);
    let mut last_id: Option<String> = None;
    let mut last_seq = [None; MAX_PUBLISHERS];
    let url = format!("ws://{}/ws?topics={}", target.host, target.channel);
    while let Ok(stream) = connect_from(target.source, target.addr).await {
        let Ok((mut socket, _)) = tokio_tungstenite::client_async(url.as_str(), stream).await
        else {
            break;
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(true);
        }
        if let Some(id) = &last_id {
            let resume = format!(
                r#"{{"type":"subscribe","topics":["{0}"],"last_event_ids":{{"{0}":"{id}"}}}}"#,
                target.channel
            );
            if socket.send(Message::text(resume)).await.is_err() {
                break;
            }
        }
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(text) = message {
                if let Some(id) = message_id(text.as_bytes()) {
                    last_id = Some(id);
                }
                totals.record(text.as_bytes(), &mut last_seq);
            }
        }
        totals.reconnects.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(false);
    }
}

/// The `"id":"…"` of a realtime WebSocket event message (the baseline's frames have none).
fn message_id(text: &[u8]) -> Option<String> {
    let at = text.windows(6).position(|w| w == b"\"id\":\"")? + 6;
    let len = text[at..].iter().position(|&b| b == b'"')?;
    String::from_utf8(text[at..at + len].to_vec()).ok()
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
            let task = match transport {
                Transport::Sse => tokio::spawn(sse_client(target, ready_inner, totals)),
                Transport::Ws => tokio::spawn(ws_client(target, ready_inner, totals)),
            };
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

/// One publishing connection; its sequence numbers are its own (`k=` names it).
async fn publish_from(
    options: &Options,
    publisher: usize,
    publishers: usize,
) -> Result<u64, String> {
    let target = options.target()?;
    let stream = connect_from(options.source_base, target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut stream = BufReader::new(stream);
    let padding = "x".repeat(options.payload.saturating_sub(48));
    let rate = (options.rate as f64 / publishers as f64).max(0.1);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut published = 0u64;
    let mut line = String::new();
    while start.elapsed() < Duration::from_secs_f64(options.seconds) {
        tick.tick().await;
        let seq = options.seq_base + published;
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
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("publish: {e}"))?;
        let mut length = 0usize;
        let mut status_ok = false;
        loop {
            line.clear();
            if stream
                .read_line(&mut line)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("server closed the publishing connection".into());
            }
            if line.starts_with("HTTP/1.1 200") {
                status_ok = true;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; length];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        if !status_ok {
            return Err(format!(
                "publish refused: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        published += 1;
    }
    Ok(published)
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
