//! The WebSocket protocol without a socket: what a framework adapter drives.

#![allow(clippy::unwrap_used)]

use http::Request;
use realtime_core::{Manager, PublishRequest};
use realtime_http::ws::{Outgoing, WsConfig, WsEndpoint, close_code};
use serde_json::Value;

const APP: &str = "https://app.example";

fn parts(uri: &str, origin: Option<&str>) -> http::request::Parts {
    let mut request = Request::get(uri);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(()).unwrap().into_parts().0
}

fn json(message: &impl AsRef<[u8]>) -> Value {
    serde_json::from_slice(message.as_ref()).unwrap()
}

#[tokio::test]
async fn handshake_checks_protocol_replies_and_close_codes() {
    let manager = Manager::builder().build().unwrap();
    let mut config = WsConfig::default();
    config.origin_policy = realtime_http::ws::OriginPolicy::allow_list(["https://app.example"]);
    let endpoint = WsEndpoint::new(manager.clone(), config, None).unwrap();

    let refused = endpoint
        .check_origin(&parts("/ws", Some("https://evil.example")))
        .unwrap_err();
    assert_eq!(
        (refused.status.as_u16(), refused.code),
        (403, "origin_not_allowed")
    );
    endpoint.check_origin(&parts("/ws", Some(APP))).unwrap();
    let skipped = endpoint
        .accept(parts("/ws?topics=a", None))
        .await
        .unwrap_err();
    assert_eq!(
        skipped.code, "origin_not_allowed",
        "accept checks the origin too"
    );
    assert_eq!(WsEndpoint::upgrade_required().status(), 426);
    let bad = endpoint
        .accept(parts("/ws?topics=a*b", Some(APP)))
        .await
        .unwrap_err();
    assert_eq!((bad.status.as_u16(), bad.code), (400, "invalid_topic"));

    // Every channel name SSE accepts.
    let mut session = endpoint
        .accept(parts("/ws?topics=user:42", Some(APP)))
        .await
        .unwrap();
    let greeting = json(&session.greeting());
    assert_eq!(
        (&greeting["type"], &greeting["topics"]),
        (
            &serde_json::json!("subscribed"),
            &serde_json::json!(["user:42"])
        )
    );
    assert!(greeting["client_id"].is_string(), "{greeting}");
    assert_eq!(
        json(&session.on_text(r#"{"type":"ping"}"#).await.next().unwrap())["type"],
        "pong"
    );
    assert_eq!(
        json(&session.on_text("nope").await.next().unwrap())["code"],
        "invalid_message"
    );

    let first = manager
        .publish(PublishRequest::new("orders", "1"))
        .await
        .unwrap();
    manager
        .publish(PublishRequest::new("orders", "2"))
        .await
        .unwrap();
    let subscribe = format!(
        r#"{{"type":"subscribe","topics":["orders"],"last_event_ids":{{"orders":"{}"}}}}"#,
        first.id
    );
    let replies: Vec<_> = session.on_text(&subscribe).await.collect();
    let kinds: Vec<Value> = replies.iter().map(|r| json(r)["type"].clone()).collect();
    assert_eq!(
        kinds,
        ["event", "subscribed"],
        "the replay, then subscribed"
    );
    assert_eq!(json(&replies[0])["data"], "2");

    manager
        .publish(PublishRequest::new("user:42", "live"))
        .await
        .unwrap();
    match session.next_outgoing().await {
        Outgoing::Messages(messages) => assert_eq!(json(&messages[0])["data"], "live"),
        other => panic!("expected the live event, got {other:?}"),
    }
    manager.disconnect(session.client_id()).unwrap();
    match session.next_outgoing().await {
        Outgoing::Close(code, reason) => {
            assert_eq!((code, reason), (close_code::DISCONNECTED, "disconnected"));
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

/// The options a team porting from the Go package asks for: an allow-list that admits
/// requests without an `Origin` only when told to, the over-capacity status (Go: 429), and
/// its own keepalive message.
#[tokio::test]
async fn missing_origin_over_capacity_status_and_keepalive_message() {
    let mut manager_config = realtime_core::ManagerConfig::default();
    manager_config.max_connections = 1;
    let manager = Manager::builder().config(manager_config).build().unwrap();
    let mut config = WsConfig::default();
    config.origin_policy = realtime_http::ws::OriginPolicy::allow_list([APP]);
    let strict = WsEndpoint::new(manager.clone(), config.clone(), None).unwrap();
    assert_eq!(
        strict.check_origin(&parts("/ws", None)).unwrap_err().code,
        "origin_not_allowed",
        "no Origin is refused by default"
    );
    config.allow_missing_origin = true;
    config.over_capacity_status = 429;
    config.keepalive_message =
        realtime_http::ws::KeepaliveMessage::new(|| serde_json::json!({"type": "still-here"}));
    let lenient = WsEndpoint::new(manager.clone(), config, None).unwrap();
    lenient.check_origin(&parts("/ws", None)).unwrap();
    assert!(
        lenient
            .check_origin(&parts("/ws", Some("https://evil.example")))
            .is_err(),
        "a wrong Origin is still refused"
    );
    let session = lenient.accept(parts("/ws?topics=a", None)).await.unwrap();
    assert_eq!(
        json(&session.keepalive()),
        serde_json::json!({"type": "still-here"})
    );
    let full = lenient
        .accept(parts("/ws?topics=a", None))
        .await
        .unwrap_err();
    assert_eq!(
        (full.status.as_u16(), full.code, full.retry_after),
        (429, "too_many_connections", Some(1))
    );
}

/// The client id on WebSocket: from the header when the endpoint reads one, from the hook's
/// grant before that, said in the greeting.
#[tokio::test]
async fn client_id_from_the_hook_wins_over_the_header() {
    use realtime_core::auth::{Authorize, Grant};
    let manager = Manager::builder().build().unwrap();
    let mut config = WsConfig::default();
    config.client_id_header = Some("x-client-id".into());
    let request = |uri: &str| {
        Request::get(uri)
            .header("x-client-id", "from-header")
            .body(())
            .unwrap()
            .into_parts()
            .0
    };
    let plain = WsEndpoint::new(manager.clone(), config.clone(), None).unwrap();
    let session = plain.accept(request("/ws?topics=a")).await.unwrap();
    assert_eq!(json(&session.greeting())["client_id"], "from-header");
    let hook = Authorize::new(|_: &http::request::Parts, _| async {
        Ok(Grant {
            client_id: Some("session-42".into()),
            ..Grant::default()
        })
    });
    let hooked = WsEndpoint::new(manager.clone(), config, Some(hook)).unwrap();
    let session = hooked.accept(request("/ws?topics=a")).await.unwrap();
    assert_eq!(json(&session.greeting())["client_id"], "session-42");
}
