//! The endpoint's answers to bad, unauthorized or unserviceable requests: JSON errors,
//! statuses, `Retry-After`, and the authorization hook.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use realtime_core::sse::Decoder;
use realtime_core::{
    Manager, ManagerConfig, NewEvent, Position, PublishRequest, ReadResult, Result, Store,
};
use realtime_sse_axum::{Authorize, Grant, Rejection, SseConfig, SseHandler};

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let manager = manager(ManagerConfig::default());
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    for (query, status, code) in [
        ("", 400, "invalid_channel"),
        ("?channel=", 400, "invalid_channel"),
        ("?channel=a%20b", 400, "invalid_channel"),
        ("?channel=a&channel=b", 400, "invalid_request"),
        ("?channel=a&tenant=t1", 400, "routing_not_allowed"),
    ] {
        let (got, body, _) = error_of(&format!("{url}{query}")).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{query}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn too_many_connections_is_503_with_retry_after() {
    let mut config = ManagerConfig::default();
    config.max_connections = 1;
    let manager = manager(config);
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    // Held open: it is the one connection the limit allows.
    let _first = SseClient::connected(&format!("{url}?channel=c")).await;
    let (status, body, retry) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str(), retry.as_deref()),
        (503, Some("too_many_connections"), Some("1"))
    );
}

struct BrokenStore;

#[async_trait::async_trait]
impl Store for BrokenStore {
    fn reach(&self) -> realtime_core::Reach {
        realtime_core::Reach::Process
    }
    async fn append(&self, _: NewEvent) -> Result<realtime_core::Event> {
        Err(broken())
    }
    async fn read(&self, _: &str, _: Position, _: usize) -> Result<ReadResult> {
        Err(broken())
    }
    async fn head(&self, _: &str) -> Result<Position> {
        Err(broken())
    }
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

fn broken() -> realtime_core::Error {
    realtime_core::BackendError::new(
        "test",
        realtime_core::BackendErrorKind::Connection,
        "store down",
    )
    .into()
}

#[tokio::test]
async fn an_unreachable_store_is_503_with_retry_after_and_releases_the_client() {
    let manager = Manager::builder()
        .store(Arc::new(BrokenStore))
        .build()
        .unwrap();
    let url = serve(SseHandler::builder(manager.clone()).build().unwrap()).await;
    let (status, body, retry_after) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str(), retry_after.as_deref()),
        (503, Some("backend_unavailable"), Some("1"))
    );
    assert_eq!(manager.connection_count(), 0);
    // A failure that retrying cannot fix stays a 500.
    let error = realtime_sse_axum::ApiError::from(realtime_core::Error::from(
        realtime_core::BackendError::new("test", realtime_core::BackendErrorKind::Decode, "bad"),
    ));
    assert_eq!((error.status.as_u16(), error.code), (500, "backend_error"));
}

#[tokio::test]
async fn the_hook_decides_the_tenant() {
    let manager = manager(ManagerConfig::default());
    let hook = Authorize::new(|parts: &http::request::Parts, _sub| {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        async move {
            match token.as_deref() {
                Some("Bearer tenant-a") => Ok(Grant {
                    tenant: Some("a".into()),
                    subject: None,
                    ..Grant::default()
                }),
                Some(_) => Err(Rejection::forbidden("unknown token")),
                None => Err(Rejection::unauthorized("no token")),
            }
        }
    });
    let url = serve_with_hook(&manager, hook).await;
    let (status, body, _) = error_of(&format!("{url}?channel=c")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let response = reqwest::Client::new()
        .get(format!("{url}?channel=c"))
        .header("authorization", "Bearer other")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The query asks for tenant b; the hook says a, and a wins.
    let response = reqwest::Client::new()
        .get(format!("{url}?channel=c&tenant=b"))
        .header("authorization", "Bearer tenant-a")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut client = SseClient {
        body: Box::pin(response.bytes_stream()),
        decoder: Decoder::new(),
        frames: Default::default(),
    };
    client.until_connected().await;
    for (tenant, data) in [("b", "for b"), ("a", "for a")] {
        let mut request = PublishRequest::new("c", data);
        request.tenant = Some(tenant.into());
        manager.publish(request).await.unwrap();
    }
    assert_eq!(
        client.event().await.data.as_deref(),
        Some("for a"),
        "tenant b's event must not arrive"
    );
}

#[tokio::test]
async fn query_routing_when_allowed() {
    let manager = manager(ManagerConfig::default());
    let mut config = SseConfig::default();
    config.routing_from_query = true;
    config.channel_param = "topic".into();
    let url = serve(
        SseHandler::builder(manager.clone())
            .config(config)
            .build()
            .unwrap(),
    )
    .await;
    let (_, client) = SseClient::open(&format!("{url}?topic=c&tenant=t1"), None).await;
    let mut client = client.unwrap();
    client.until_connected().await;
    for (tenant, data) in [("t2", "t2"), ("t1", "t1")] {
        let mut request = PublishRequest::new("c", data);
        request.tenant = Some(tenant.into());
        manager.publish(request).await.unwrap();
    }
    assert_eq!(client.event().await.data.as_deref(), Some("t1"));
}

/// The hook sees the channel a stream asks for and may refuse it: a JSON 403, no stream.
#[tokio::test]
async fn the_hook_sees_and_may_refuse_the_channel() {
    let manager = manager(ManagerConfig::default());
    let hook = Authorize::new(
        |_: &http::request::Parts, sub: &realtime_core::SubscribeRequest| {
            let allowed = sub.channels.iter().all(|c| c.channel.starts_with("mine-"));
            async move {
                if allowed {
                    Ok(Grant::default())
                } else {
                    Err(Rejection::forbidden("not your channel"))
                }
            }
        },
    );
    let url = serve_with_hook(&manager, hook).await;
    let (status, body, _) = error_of(&format!("{url}?channel=secret")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert_eq!(manager.connection_count(), 0);
    let response = reqwest::get(format!("{url}?channel=mine-a")).await.unwrap();
    assert_eq!(response.status(), 200);
}

/// Serves the endpoint with `hook` as its authorization.
async fn serve_with_hook(manager: &Manager, hook: Authorize<http::request::Parts>) -> String {
    serve(
        SseHandler::builder(manager.clone())
            .authorize(hook)
            .build()
            .unwrap(),
    )
    .await
}
