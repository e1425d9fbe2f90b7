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

mod publish;
mod subscribe;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use realtime_loadbench::{Histogram, MAX_PUBLISHERS, Options, parse_payload};
use tokio::net::{TcpSocket, TcpStream};

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
            "subscribe" => runtime.block_on(subscribe::subscribe(options)),
            "publish" => runtime.block_on(publish::publish(options)),
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
