//! The SSE endpoint, over its socket.

use realtime_core::PublishRequest;

use super::Server;
use super::client::{DEADLINE, open_sse};

async fn publish(server: &Server, channel: &str, data: &str) -> realtime_core::Event {
    server
        .manager
        .publish(PublishRequest::new(channel, data.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"))
}

/// Bad input gets 400 with a JSON `{"error","message"}`: no channel, a parameter given twice,
/// a channel name outside the rule.
pub async fn sse_bad_requests(server: &Server) {
    for (query, code) in [
        ("", "invalid_channel"),
        ("channel=a&channel=b", "invalid_request"),
        ("channel=bad*name", "invalid_channel"),
        ("channel=a&backlog=ten", "invalid_backlog"),
        ("channel=a&backlog=100000", "invalid_request"),
    ] {
        match open_sse(&server.sse(query), None).await {
            Err((status, body, _)) => {
                assert_eq!(
                    (status, body["error"].as_str()),
                    (400, Some(code)),
                    "{query:?}"
                );
                assert!(body["message"].is_string(), "{query:?}: a message");
            }
            Ok(_) => panic!("{query:?}: expected a 400"),
        }
    }
}

/// The stream's headers, the retry first, the exact replay after `Last-Event-ID`, then
/// `: connected`, then live events with their ids, types and retries.
pub async fn sse_headers_replay_and_live(server: &Server) {
    let first = publish(server, "orders", "one").await;
    publish(server, "orders", "two\nlines").await;
    let mut stream = open_sse(&server.sse("channel=orders"), Some(&first.id.to_token()))
        .await
        .unwrap_or_else(|e| panic!("open: {e:?}"));
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-cache");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    let before = stream.until_connected().await;
    assert_eq!(before[0].retry, Some(3000), "the default retry comes first");
    let replay: Vec<_> = before[1..].iter().map(|f| f.data.clone()).collect();
    assert_eq!(
        replay,
        [Some("two\nlines".to_owned())],
        "exactly the missed event"
    );
    let mut request = PublishRequest::new("orders", "three");
    request.event_type = Some("created".into());
    let live = server
        .manager
        .publish(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let frame = stream.event().await;
    assert_eq!(
        (frame.id, frame.event.as_deref(), frame.data.as_deref()),
        (Some(live.id.to_token()), Some("created"), Some("three"))
    );
}

/// A resume position that cannot be replayed exactly gets the gap signal with the head, then
/// live events.
pub async fn sse_gap_signal(server: &Server) {
    let head = publish(server, "c", "one").await;
    let mut stream = open_sse(&server.sse("channel=c"), Some("not-a-position"))
        .await
        .unwrap_or_else(|e| panic!("open: {e:?}"));
    let before = stream.until_connected().await;
    let gap = before
        .iter()
        .find(|f| f.event.as_deref() == Some("realtime-gap"))
        .and_then(|f| f.data.clone())
        .unwrap_or_else(|| panic!("a gap signal before `: connected`: {before:?}"));
    let gap: serde_json::Value = serde_json::from_str(&gap).unwrap_or_default();
    assert_eq!(gap["reason"], "unknown_position");
    assert_eq!(gap["head"], head.id.to_token());
    publish(server, "c", "two").await;
    assert_eq!(stream.event().await.data.as_deref(), Some("two"));
}

/// Past the connection limit: 503 `too_many_connections` with `Retry-After`; a slot comes
/// back once a client leaves.
pub async fn sse_connection_limit(server: &Server) {
    let mut held = Vec::new();
    for _ in 0..super::Setup::MAX_CONNECTIONS {
        let mut stream = open_sse(&server.sse("channel=c"), None)
            .await
            .unwrap_or_else(|e| panic!("open: {e:?}"));
        stream.until_connected().await;
        held.push(stream);
    }
    match open_sse(&server.sse("channel=c"), None).await {
        Err((status, body, retry)) => assert_eq!(
            (status, body["error"].as_str(), retry.as_deref()),
            (503, Some("too_many_connections"), Some("1"))
        ),
        Ok(_) => panic!("expected a 503 past the limit"),
    }
    held.pop();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.manager.connection_count() >= super::Setup::MAX_CONNECTIONS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot of a client that left is released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut again = open_sse(&server.sse("channel=c"), None)
        .await
        .unwrap_or_else(|e| panic!("a slot again: {e:?}"));
    again.until_connected().await;
}

/// Closing the manager ends every stream (browsers reconnect elsewhere).
pub async fn sse_shutdown(server: &Server) {
    let mut stream = open_sse(&server.sse("channel=c"), None)
        .await
        .unwrap_or_else(|e| panic!("open: {e:?}"));
    stream.until_connected().await;
    server
        .manager
        .close()
        .await
        .unwrap_or_else(|e| panic!("close: {e}"));
    while let Some(frame) = stream.frame().await {
        assert!(frame.data.is_none(), "no event after shutdown: {frame:?}");
    }
}

/// A new subscriber asking `backlog=2` gets the two newest events before `: connected`, in
/// order and with their ids, then live ones.
pub async fn sse_backlog(server: &Server) {
    for data in ["1", "2", "3"] {
        publish(server, "feed", data).await;
    }
    let mut stream = open_sse(&server.sse("channel=feed&backlog=2"), None)
        .await
        .unwrap_or_else(|e| panic!("open: {e:?}"));
    let before = stream.until_connected().await;
    let backlog: Vec<_> = before[1..].iter().map(|f| f.data.clone()).collect();
    assert_eq!(backlog, [Some("2".to_owned()), Some("3".to_owned())]);
    assert!(before[1..].iter().all(|f| f.id.is_some()), "positioned");
    let live = publish(server, "feed", "4").await;
    assert_eq!(stream.event().await.id, Some(live.id.to_token()));
}

/// SSE data is text: JSON data as its text, binary data as one line of standard base64.
pub async fn sse_data_formats(server: &Server) {
    let mut stream = open_sse(&server.sse("channel=formats"), None)
        .await
        .unwrap_or_else(|e| panic!("open: {e:?}"));
    stream.until_connected().await;
    let json = PublishRequest::json("formats", &serde_json::json!({"a": [1, "x\ny"]}));
    let binary = PublishRequest::binary("formats", vec![0u8, b'\n', b'\r', 0xff]);
    for request in [json.unwrap_or_else(|e| panic!("{e}")), binary] {
        let published = server.manager.publish(request).await;
        published.unwrap_or_else(|e| panic!("publish: {e}"));
    }
    let data = stream.event().await.data;
    assert_eq!(data.as_deref(), Some("{\"a\":[1,\"x\\ny\"]}"));
    let data = stream.event().await.data;
    assert_eq!(data.as_deref(), Some("AAoN/w=="), "base64, one line");
}
