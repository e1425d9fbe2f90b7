//! `loadgen publish`: pipelined `POST /publish` at a set rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use realtime_loadbench::Options;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Semaphore;

use crate::{connect_from, now_ns, print_line};

/// Publishes from `options.publishers` connections at once, each at its share of the rate, so
/// the offered load does not wait on one request at a time.
pub(crate) async fn publish(options: Options) -> Result<(), String> {
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
