//! Any `Last-Event-ID` a client sends gets a stream: an exact replay, or a gap naming the
//! head, never an error status or a partial replay.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use realtime_core::sse::Decoder;
use realtime_core::{Manager, PublishRequest};
use realtime_sse_axum::SseHandler;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_last_event_id_is_answered_with_a_stream(
        id in prop_oneof![
            "[ -~]{0,40}",
            "[0-9a-f]{1,16}-[0-9]{1,4}",
        ],
        from_query: bool,
        pick in proptest::option::of(0usize..3),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let manager = Manager::builder().build().unwrap();
            let mut ids = Vec::new();
            for i in 0..3 {
                ids.push(manager.publish(PublishRequest::new("c", format!("{i}"))).await.unwrap().id);
            }
            // Sometimes an id the server issued, to check the exact replay too.
            let id = match pick {
                Some(i) => ids[i].to_token(),
                None => id,
            };
            let handler = SseHandler::builder(manager.clone()).build().unwrap();
            let app = axum::Router::new().route("/events", handler.get());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}/events?channel=c", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let request = if from_query {
                let query: String = form_urlencoded_pair(&id);
                reqwest::Client::new().get(format!("{base}&{query}"))
            } else {
                reqwest::Client::new().get(&base).header("last-event-id", id.trim())
            };
            let mut response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{id:?}");
            // Everything up to `: connected`: a gap and nothing else, or exactly the events
            // after a known id.
            let mut decoder = Decoder::new();
            let mut frames = Vec::new();
            while !frames.iter().any(|f: &realtime_core::sse::Frame| f.comments.iter().any(|c| c == "connected")) {
                let chunk = response.chunk().await.unwrap().expect("the stream goes on");
                frames.extend(decoder.feed(&chunk));
            }
            let gaps = frames.iter().filter(|f| f.event.as_deref() == Some("realtime-gap")).count();
            let events: Vec<_> = frames
                .iter()
                .filter(|f| f.event.is_none() && f.data.is_some())
                .map(|f| f.id.clone().unwrap())
                .collect();
            let known = ids.iter().position(|p| p.to_token() == id.trim());
            match known {
                Some(i) => {
                    let expected: Vec<String> = ids[i + 1..].iter().map(|p| p.to_token()).collect();
                    assert_eq!((gaps, events), (0, expected), "{id:?}");
                }
                None if id.trim().is_empty() => assert_eq!((gaps, events.len()), (0, 0)),
                None => assert_eq!((gaps, events.len()), (1, 0), "{id:?}: a gap, no partial replay"),
            }
        });
    }
}

/// `last_event_id=<id>`, percent-encoded.
fn form_urlencoded_pair(id: &str) -> String {
    let mut out = String::from("last_event_id=");
    for byte in id.trim().bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
