//! The SSE endpoint without any web framework: request parts in, byte chunks out.

#![allow(clippy::unwrap_used)]

use std::pin::Pin;

use futures_core::Stream;
use realtime_core::{Manager, PublishRequest};
use realtime_http::{SseConfig, SseEndpoint, SseStream};

async fn next_chunk(stream: &mut SseStream) -> String {
    let chunk = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(chunk.to_vec()).unwrap()
}

#[tokio::test]
async fn parts_in_replay_connected_and_live_out() {
    let manager = Manager::builder().build().unwrap();
    let first = manager
        .publish(PublishRequest::new("orders", "one"))
        .await
        .unwrap();
    manager
        .publish(PublishRequest::new("orders", "two"))
        .await
        .unwrap();
    let endpoint = SseEndpoint::new(manager.clone(), SseConfig::default(), None).unwrap();
    let (parts, ()) = http::Request::builder()
        .uri("/events?channel=orders")
        .header("last-event-id", first.id.to_token())
        .body(())
        .unwrap()
        .into_parts();
    let mut stream = endpoint.open(&parts).await.unwrap();
    assert!(next_chunk(&mut stream).await.starts_with("retry: "));
    assert!(next_chunk(&mut stream).await.contains("data: two\n"));
    assert_eq!(next_chunk(&mut stream).await, ": connected\n\n");
    manager
        .publish(PublishRequest::new("orders", "three"))
        .await
        .unwrap();
    assert!(next_chunk(&mut stream).await.contains("data: three\n"));
    let (parts, ()) = http::Request::builder()
        .uri("/events")
        .body(())
        .unwrap()
        .into_parts();
    let error = endpoint.open(&parts).await.err().unwrap();
    assert_eq!(
        (error.status.as_u16(), error.code),
        (400, "invalid_channel")
    );
}

/// At the connection limit: 503 by default, the configured status otherwise (the Go
/// package's 429), with `Retry-After` either way.
#[tokio::test]
async fn over_capacity_status_is_configurable() {
    let mut config = realtime_core::ManagerConfig::default();
    config.max_connections = 1;
    let manager = Manager::builder().config(config).build().unwrap();
    let request = || {
        http::Request::builder()
            .uri("/events?channel=orders")
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let default = SseEndpoint::new(manager.clone(), SseConfig::default(), None).unwrap();
    let _held = default.open(&request()).await.unwrap();
    let full = default.open(&request()).await.err().unwrap();
    assert_eq!((full.status.as_u16(), full.retry_after), (503, Some(1)));
    let mut sse = SseConfig::default();
    sse.over_capacity_status = 429;
    let go_like = SseEndpoint::new(manager.clone(), sse, None).unwrap();
    let full = go_like.open(&request()).await.err().unwrap();
    assert_eq!(
        (full.status.as_u16(), full.code, full.retry_after),
        (429, "too_many_connections", Some(1))
    );
}

/// The client id: generated and said in the first frame by default (a header is not read);
/// from `client_id_header` when set; unique per instance; and a disconnect by id from any
/// instance ends the stream.
#[tokio::test]
async fn client_ids_from_a_header_said_first_and_disconnected_by_id() {
    let manager = Manager::builder().build().unwrap();
    let request = || {
        http::Request::builder()
            .uri("/events?channel=orders")
            .header("x-client-id", "user-7")
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let default = SseEndpoint::new(manager.clone(), SseConfig::default(), None).unwrap();
    let mut generated = default.open(&request()).await.unwrap();
    let first = next_chunk(&mut generated).await;
    assert!(
        first.starts_with("retry: ") && first.contains("\n: client_id "),
        "{first}"
    );
    assert!(
        !first.contains("user-7"),
        "the header is not read by default: {first}"
    );

    let mut config = SseConfig::default();
    config.client_id_header = Some("x-client-id".into());
    let trusting = SseEndpoint::new(manager.clone(), config, None).unwrap();
    let mut stream = trusting.open(&request()).await.unwrap();
    assert!(
        next_chunk(&mut stream)
            .await
            .ends_with(": client_id user-7\n\n")
    );
    // A second tab of the same user: accepted, under the same id.
    let mut second = trusting.open(&request()).await.unwrap();
    assert!(
        next_chunk(&mut second)
            .await
            .ends_with(": client_id user-7\n\n")
    );
    assert_eq!(next_chunk(&mut stream).await, ": connected\n\n");
    assert_eq!(next_chunk(&mut second).await, ": connected\n\n");
    manager.disconnect_everywhere("user-7").await.unwrap();
    for stream in [&mut stream, &mut second] {
        let last = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await;
        let last = String::from_utf8(last.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(last, ": closed: disconnected\n\n", "every stream of the id");
        let ended = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await;
        assert!(ended.is_none(), "then it ends: {ended:?}");
    }
    let mut other = default.open(&request()).await.unwrap();
    assert!(
        !next_chunk(&mut other).await.contains("user-7"),
        "generated ids stay"
    );
}
