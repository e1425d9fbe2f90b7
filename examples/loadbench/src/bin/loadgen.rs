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
    ended: AtomicU64,
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

/// One SSE subscriber: raw HTTP/1.1, chunked decoding, then the SSE decoder.
async fn sse_client(
    stream: TcpStream,
    host: String,
    path: String,
    ready: tokio::sync::oneshot::Sender<bool>,
    totals: Arc<Totals>,
) {
    let mut stream = BufReader::with_capacity(16 * 1024, stream);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n");
    if stream
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .is_err()
    {
        let _ = ready.send(false);
        return;
    }
    let mut line = String::new();
    let mut ok = false;
    let mut chunked = false;
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            let _ = ready.send(false);
            return;
        }
        if line.starts_with("HTTP/1.1 200") {
            ok = true;
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
        if line == "\r\n" {
            break;
        }
    }
    let _ = ready.send(ok);
    if !ok {
        return;
    }
    let mut decoder = realtime_core::sse::Decoder::new();
    let mut last_seq = [None; MAX_PUBLISHERS];
    let mut buf = vec![0u8; 16 * 1024];
    let mut chunk_left = 0usize;
    loop {
        let data: Vec<u8> = if chunked {
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
            let n = match stream.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            chunk_left -= n;
            buf[..n].to_vec()
        } else {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf[..n].to_vec(),
            }
        };
        for frame in decoder.feed(&data) {
            if let Some(payload) = frame.data {
                totals.record(payload.as_bytes(), &mut last_seq);
            }
        }
    }
    totals.ended.fetch_add(1, Ordering::Relaxed);
}

/// One WebSocket subscriber.
async fn ws_client(
    stream: TcpStream,
    url: String,
    ready: tokio::sync::oneshot::Sender<bool>,
    totals: Arc<Totals>,
) {
    use futures_util::StreamExt;
    let Ok((mut socket, _)) = tokio_tungstenite::client_async(url, stream).await else {
        let _ = ready.send(false);
        return;
    };
    let _ = ready.send(true);
    let mut last_seq = [None; MAX_PUBLISHERS];
    while let Some(Ok(message)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            totals.record(text.as_bytes(), &mut last_seq);
        }
    }
    totals.ended.fetch_add(1, Ordering::Relaxed);
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
            let Ok(stream) = connect_from(source, target).await else {
                let _ = ready.send(false);
                return;
            };
            match transport {
                Transport::Sse => {
                    let (ready_inner, done) = tokio::sync::oneshot::channel();
                    let task = tokio::spawn(sse_client(
                        stream,
                        host,
                        format!("/events?channel={channel}"),
                        ready_inner,
                        totals,
                    ));
                    let _ = ready.send(done.await.unwrap_or(false));
                    drop(permit);
                    let _ = task.await;
                }
                Transport::Ws => {
                    let (ready_inner, done) = tokio::sync::oneshot::channel();
                    let url = format!("ws://{host}/ws?topics={channel}");
                    let task = tokio::spawn(ws_client(stream, url, ready_inner, totals));
                    let _ = ready.send(done.await.unwrap_or(false));
                    drop(permit);
                    let _ = task.await;
                }
            }
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
            "report connected={connected} received={} duplicates={} ended_early={}",
            totals.received.swap(0, Ordering::Relaxed),
            totals.duplicates.swap(0, Ordering::Relaxed),
            totals.ended.load(Ordering::Relaxed),
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
