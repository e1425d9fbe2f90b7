//! The demo's routes over a real socket.

#![allow(clippy::unwrap_used)]

use realtime_demo::{Options, app, manager};
use serde_json::{Value, json};

async fn start() -> String {
    let options = Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    };
    let app = app(manager(&options).await.unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind(options.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(realtime_sse_axum::Server::new().serve(listener, app, std::future::pending()));
    format!("http://{addr}")
}

async fn post(base: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/publish"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn publish_validates_and_returns_the_id() {
    let base = start().await;
    let (status, body) = post(&base, r#"{"channel":"c","data":"hello","type":"note"}"#).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(
        realtime_core::Position::parse(id).is_ok(),
        "id {id} is a position token"
    );
    let (status, body) = post(&base, r#"{"channel":"c","data":{"n":1}}"#).await;
    assert_eq!(status, 200, "{body}");
    for (input, code) in [
        ("not json", "invalid_json"),
        (r#"{"channel":"c"}"#, "invalid_request"),
        (r#"{"channel":"c","data":null}"#, "invalid_request"),
        (
            r#"{"channel":"c","data":"x","data_base64":"eA=="}"#,
            "invalid_request",
        ),
        (
            r#"{"channel":"c","data_base64":"not base64!"}"#,
            "invalid_request",
        ),
        (r#"{"channel":"a b","data":"x"}"#, "invalid_channel"),
        (
            r#"{"channel":"c","data":"x","type":"realtime-gap"}"#,
            "invalid_request",
        ),
        (r#"{"channel":"c","data":"x","extra":1}"#, "invalid_json"),
    ] {
        let (status, body) = post(&base, input).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(code)),
            "{input}: {body}"
        );
    }
}

#[tokio::test]
async fn page_stats_and_metrics() {
    let base = start().await;
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("new EventSource(") && page.contains("from \"/realtime.js\""));
    let client = reqwest::get(format!("{base}/realtime.js")).await.unwrap();
    assert_eq!(
        client.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let client = client.text().await.unwrap();
    assert!(client.contains("export class RealtimeClient") && client.contains("realtime-gap"));
    post(&base, r#"{"channel":"m","data":"x"}"#).await;
    let stats: Value = reqwest::get(format!("{base}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, json!({"connections": 0, "channels": 0}));
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("realtime_published_total"), "{text}");
}

async fn start_on_redis(prefix_note: &str) -> String {
    let mut options = Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    };
    options.redis_url = Some(
        std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    );
    let manager = match manager(&options).await {
        Ok(manager) => manager,
        Err(error) => panic!("{prefix_note}: this test needs Redis: {error}"),
    };
    let listener = tokio::net::TcpListener::bind(options.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(manager).unwrap();
    tokio::spawn(realtime_sse_axum::Server::new().serve(listener, app, std::future::pending()));
    format!("http://{addr}")
}

/// Reads SSE frames until one carries data.
async fn next_data(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    decoder: &mut realtime_core::sse::Decoder,
    pending: &mut std::collections::VecDeque<realtime_core::sse::Frame>,
) -> realtime_core::sse::Frame {
    use futures_util::StreamExt;
    loop {
        if let Some(frame) = pending.pop_front() {
            if frame.data.is_some() {
                return frame;
            }
            continue;
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("a frame within 10 s")
            .expect("stream open")
            .unwrap();
        pending.extend(decoder.feed(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_on_redis_form_a_cluster() {
    let (a, b) = (
        start_on_redis("demo a").await,
        start_on_redis("demo b").await,
    );
    let channel = format!("cluster-{}", realtime_core::Epoch::fresh().0);
    let response = reqwest::get(format!("{b}/events?channel={channel}"))
        .await
        .unwrap();
    let mut body = Box::pin(response.bytes_stream());
    let (mut decoder, mut pending) = (realtime_core::sse::Decoder::new(), Default::default());
    let (_, first) = post(&a, &format!(r#"{{"channel":"{channel}","data":"one"}}"#)).await;
    let frame = next_data(&mut body, &mut decoder, &mut pending).await;
    assert_eq!(
        (frame.id.as_deref(), frame.data.as_deref()),
        (first["id"].as_str(), Some("one"))
    );
    // Published on A while the reader is away, resumed on B with A's id.
    drop(body);
    let (_, second) = post(&a, &format!(r#"{{"channel":"{channel}","data":"two"}}"#)).await;
    let response = reqwest::Client::new()
        .get(format!("{b}/events?channel={channel}"))
        .header("last-event-id", first["id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let mut body = Box::pin(response.bytes_stream());
    let (mut decoder, mut pending) = (realtime_core::sse::Decoder::new(), Default::default());
    let frame = next_data(&mut body, &mut decoder, &mut pending).await;
    assert_eq!(
        (frame.id.as_deref(), frame.data.as_deref()),
        (second["id"].as_str(), Some("two"))
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let manager = realtime_core::Manager::builder().build().unwrap();
    let app = realtime_demo::app(manager.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, json!({"status": "ok"})));
    assert_eq!(
        get("/readyz").await,
        (200, json!({"store": "ok", "bus": "ok"}))
    );
    manager.close().await.unwrap();
    assert_eq!(
        get("/readyz").await,
        (503, json!({"store": "closed", "bus": "closed"}))
    );
    assert_eq!(get("/healthz").await.0, 200);
}

/// The demo's router under `axum::serve` (not this crate's server, which refuses it while
/// reading the head): two `Host` headers still get 400 on every route.
#[tokio::test]
async fn two_host_headers_get_400_under_axum_serve() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let manager = realtime_core::Manager::builder().build().unwrap();
    let app = realtime_demo::app(manager).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    for path in ["/stats", "/healthz", "/events?channel=c", "/no-such-route"] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0; 1024];
        let read = stream.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("more than one Host"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn publish_refuses_forms_and_big_bodies_with_json_and_dedupes_retries() {
    let base = start().await;
    let client = reqwest::Client::new();
    let send = |content_type: &'static str, body: String, key: Option<&'static str>| {
        let mut request = client
            .post(format!("{base}/publish"))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let form = r#"{"channel":"c","data":"x"}"#.to_owned();
    let (status, body) = send("text/plain", form.clone(), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let huge = format!(r#"{{"channel":"c","data":"{}"}}"#, "x".repeat(3 << 20));
    let (status, body) = send("application/json", huge, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (_, first) = send("application/json", form.clone(), Some("k-1")).await;
    let (_, again) = send("application/json; charset=utf-8", form.clone(), Some("k-1")).await;
    let (_, other) = send("application/json", form, None).await;
    assert_eq!(first["id"], again["id"], "a retry returns the first id");
    assert_ne!(first["id"], other["id"]);
}
