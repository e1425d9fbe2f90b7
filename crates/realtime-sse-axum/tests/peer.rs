//! The client's address reaches hooks and handlers under `Server`, on both of its paths.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use realtime_core::Manager;
use realtime_sse_axum::{Authorize, Parts, PeerAddr, Rejection, Server, SseHandler};

#[tokio::test]
async fn both_paths_tell_the_peer_address() {
    let manager = Manager::builder().build().unwrap();
    // The hook refuses, naming the address it saw: the answer shows what reached it.
    let hook = Authorize::new(|parts: &Parts, _sub| {
        let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0);
        async move { Err(Rejection::forbidden(format!("peer {peer:?}"))) }
    });
    let sse = SseHandler::builder(manager)
        .authorize(hook)
        .build()
        .unwrap();
    let app = Router::new().route("/events", sse.get()).route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { format!("peer {peer}") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(Server::new().serve(listener, app, std::future::pending()));

    // The lean path (an event stream), the hook reading `PeerAddr`.
    let refused = reqwest::Client::new()
        .get(format!("http://{addr}/events?channel=a"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body = refused.text().await.unwrap();
    assert!(body.contains("peer Some(127.0.0.1:"), "{body}");

    // hyper's path (anything else), a handler reading axum's `ConnectInfo`.
    let answer = reqwest::get(format!("http://{addr}/peer")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    assert!(body.starts_with("peer 127.0.0.1:"), "{body}");
}
