//! The demo process on SIGTERM: every WebSocket client gets the close frame 1001, every SSE
//! stream ends, and the process exits by itself.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_with_1001_and_exits() {
    let mut demo = tokio::process::Command::new(env!("CARGO_BIN_EXE_realtime-demo"))
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(DEADLINE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
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
