//! The demo's routes over a real socket.

#![allow(clippy::unwrap_used)]

use realtime_demo::{Options, app, manager};
use serde_json::{Value, json};

async fn start() -> String {
    let options = Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    };
    let app = app(manager(&options).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind(options.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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
        (r#"{"channel":"c"}"#, "invalid_json"),
        (r#"{"channel":"c","data":null}"#, "invalid_request"),
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
    assert!(page.contains("new EventSource(") && page.contains("realtime-gap"));
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
