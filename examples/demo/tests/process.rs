//! The demo process, on each framework: on SIGTERM every WebSocket client gets the close
//! frame 1001, every SSE stream ends, and the process exits by itself; `/publish` checks the
//! content type before it reads a body, and gives up on a body that does not arrive.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);

/// The demo binary on `framework`, and its `HOST:PORT`.
async fn demo(framework: &str) -> (Child, String) {
    demo_with(&["--framework", framework]).await
}

/// The demo binary with `args`, and its `HOST:PORT`.
async fn demo_with(args: &[&str]) -> (Child, String) {
    let mut demo = common::demo_command()
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let Some(line) = line else {
        // It exited: say why (a server it needs that is not there names how to start it).
        let mut why = String::new();
        if let Some(mut stderr) = demo.stderr.take() {
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut why).await;
        }
        panic!("the demo {args:?} did not start: {why}");
    };
    // Its log is drained (not kept), so it never blocks on a full pipe.
    if let Some(mut stderr) = demo.stderr.take() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        });
    }
    let base = line
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    (demo, base)
}

async fn sigterm_closes_websockets_with_1001_and_exits(framework: &str) {
    let (mut demo, base) = demo(framework).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{base}/ws?topics=c"))
        .await
        .unwrap();
    let sse = reqwest::get(format!("http://{base}/events?channel=c"))
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    let pid = demo.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let code = loop {
        match tokio::time::timeout(DEADLINE, socket.next()).await.unwrap() {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(Message::Close(None))) | None => panic!("closed without a close frame"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("connection dropped without a close frame: {error}"),
        }
    };
    assert_eq!(code, 1001);
    let body = tokio::time::timeout(DEADLINE, sse.bytes())
        .await
        .expect("the SSE stream ends");
    assert!(body.is_ok(), "the SSE stream ends cleanly: {body:?}");
    let status = tokio::time::timeout(DEADLINE, demo.wait())
        .await
        .expect("the demo exits by itself")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A form post of 3 MiB is refused for its type (415), not its size: the body is not read.
async fn publish_checks_the_type_before_the_body(framework: &str) {
    let (_demo, base) = demo(framework).await;
    let response = reqwest::Client::new()
        .post(format!("http://{base}/publish"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 3 << 20])
        .send()
        .await;
    // The server may answer before it read the body and close the connection under the
    // upload; an answer is all that is asked.
    if let Ok(response) = response {
        assert_eq!(response.status().as_u16(), 415);
    }
    let response = reqwest::Client::new()
        .post(format!("http://{base}/publish"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
}

/// A body announced and never sent gets 408 after the body timeout (10 s), not a connection
/// held forever.
async fn a_body_that_never_arrives_gets_408(framework: &str) {
    let (_demo, base) = demo(framework).await;
    let head = "POST /publish HTTP/1.1\r\nhost: demo\r\ncontent-type: application/json\r\n\
                content-length: 100\r\n\r\n{\"channel\":";
    let answer = raw_answer(&base, head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// Two `Host` headers get 400 on every route, not only on the streams (RFC 9112 §3.2): on
/// axum from the demo's layer (and this crate's server), on actix-web from actix-http itself.
async fn two_host_headers_get_400_on_every_route(framework: &str) {
    let (_demo, base) = demo(framework).await;
    for head in [
        "POST /publish HTTP/1.1\r\nhost: a\r\nhost: b\r\ncontent-type: application/json\r\n\
         content-length: 26\r\n\r\n{\"channel\":\"c\",\"data\":\"x\"}",
        "GET /stats HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        "GET /events?channel=c HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
    ] {
        let answer = raw_answer(&base, head).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{head}: {answer}");
    }
}

/// Writes `request` on a new connection to `base` and returns the start of the answer.
async fn raw_answer(base: &str, request: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(base).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(DEADLINE, stream.read(&mut answer))
        .await
        .expect("an answer before the deadline")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// Two demo processes linked by `bus_args`: an event published on one reaches an SSE stream
/// on the other.
async fn two_demos_linked_by(bus_args: &[&str], label: &str) {
    let (_a, a) = demo_with(bus_args).await;
    let (_b, b) = demo_with(bus_args).await;
    let channel = format!("{label}-demo-{}", std::process::id());
    let mut stream = reqwest::get(format!("http://{b}/events?channel={channel}"))
        .await
        .unwrap()
        .bytes_stream();
    let mut seen = String::new();
    // The subscription is active once `: connected` is out.
    while !seen.contains(": connected") {
        let chunk = tokio::time::timeout(DEADLINE, stream.next()).await.unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    let published = reqwest::Client::new()
        .post(format!("http://{a}/publish"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"channel":"{channel}","data":"through {label}"}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status().as_u16(), 200);
    while !seen.contains(&format!("data: through {label}")) {
        let chunk = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .unwrap_or_else(|_| {
                panic!("not delivered across instances; the stream so far: {seen}")
            });
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_linked_by_kafka() {
    let brokers =
        std::env::var("REALTIME_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    two_demos_linked_by(&["--kafka-brokers", &brokers], "kafka").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_linked_by_sqs() {
    let endpoint =
        std::env::var("REALTIME_SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    two_demos_linked_by(&["--sqs-endpoint", &endpoint], "sqs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_linked_by_rabbitmq() {
    let url = std::env::var("REALTIME_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    two_demos_linked_by(&["--amqp-url", &url], "rabbitmq").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_linked_by_nats() {
    let url = std::env::var("REALTIME_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    two_demos_linked_by(&["--nats-url", &url], "nats").await;
}

macro_rules! on_each_framework {
    ($($test:ident),* $(,)?) => {
        mod axum {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test("axum").await;
                }
            )*
        }
        mod actix {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test("actix").await;
                }
            )*
        }
    };
}

on_each_framework!(
    sigterm_closes_websockets_with_1001_and_exits,
    publish_checks_the_type_before_the_body,
    a_body_that_never_arrives_gets_408,
    two_host_headers_get_400_on_every_route,
);
