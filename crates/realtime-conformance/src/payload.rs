//! What a payload is: the [`DataFormat`] a publisher sets arrives unchanged, live on another
//! instance and replayed from the store.

use realtime_core::{
    ChannelRequest, DataFormat, Error, History, ManagerConfig, PublishRequest, SubscribeRequest,
};

use crate::Backend;
use crate::support::{channel, instance, next_event, ok};

/// Text, JSON and binary events (bytes that are not UTF-8, a line break among them) keep
/// their format and bytes on the bus and in the store; data that is not what its format says
/// is refused at publish.
pub async fn manager_data_formats(backend: &dyn Backend) {
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("formats");
    let mut live = ok(
        b.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe on b",
    )
    .client;
    let requests = [
        PublishRequest::new(&ch, "plain text"),
        ok(
            PublishRequest::json(&ch, &serde_json::json!({"n": 1, "s": "é\n"})),
            "a JSON request",
        ),
        PublishRequest::binary(&ch, vec![0u8, 0xff, b'\n', 0x80, b'\r']),
    ];
    let mut published = Vec::new();
    for request in requests {
        published.push(ok(a.publish(request).await, "publish"));
    }
    let formats: Vec<DataFormat> = published.iter().map(|e| e.format).collect();
    assert_eq!(
        formats,
        [DataFormat::Text, DataFormat::Json, DataFormat::Binary]
    );
    // With history per instance, b numbers the events in its own history: compare the rest.
    let shared = backend.history() == History::Shared;
    let mut received = Vec::new();
    for sent in &published {
        let got = next_event(&mut live, "live on the other instance").await;
        assert_eq!((got.format, &got.data), (sent.format, &sent.data), "live");
        assert!(
            !shared || got.id == sent.id,
            "live: {} for {}",
            got.id,
            sent.id
        );
        received.push(got);
    }
    let replayed = ok(
        b.subscribe(SubscribeRequest {
            channels: vec![ChannelRequest::backlog(&ch, 3)],
            ..SubscribeRequest::default()
        })
        .await,
        "subscribe with a backlog",
    );
    let replayed: Vec<_> = replayed.replay[0]
        .events
        .iter()
        .map(|e| (e.id, e.format, e.data.clone()))
        .collect();
    let expected: Vec<_> = received
        .iter()
        .map(|e| (e.id, e.format, e.data.clone()))
        .collect();
    assert_eq!(replayed, expected, "replayed from the store");

    let as_json = |data: Vec<u8>| PublishRequest {
        format: DataFormat::Json,
        ..PublishRequest::new(&ch, data)
    };
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    for (what, request) in [
        ("not JSON", as_json(b"{\"n\": 1".to_vec())),
        ("JSON, not UTF-8", as_json(b"\"\xff\"".to_vec())),
        ("JSON nested 65 deep", as_json(deep.into_bytes())),
        ("text, not UTF-8", PublishRequest::new(&ch, vec![0xffu8])),
    ] {
        let refused = a.publish(request).await;
        assert!(
            matches!(refused, Err(Error::InvalidRequest { field: "data", .. })),
            "{what}: {refused:?}"
        );
    }
}
