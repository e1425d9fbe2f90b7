//! # realtime-ws-actix
//!
//! The realtime WebSocket endpoint on actix-web 4, on `actix-ws`: the same protocol, origin
//! policy, topics, authorization hook, read limit (1009), write timeout, pings, keepalive and
//! close codes as `realtime-ws` on axum — both run `realtime-http`'s engine
//! ([`realtime_http::ws`]); this crate is the actix upgrade and socket loop. (A sibling crate
//! rather than a feature of `realtime-ws`: each adapter knows one framework, so enabling both
//! never mixes two frameworks' dependency trees in one crate.)
//!
//! The authorization hook is an `Authorize<Parts>` (both re-exported here, with [`Grant`] and
//! [`Rejection`]), written as for SSE:
//! `Authorize::new(|parts: &Parts, asked: &SubscribeRequest| { /* copy from parts */ async move { Ok(Grant::default()) } })`.
//! [`Parts`] is the `http` 1.x head of the upgrade request — not actix's `HttpRequest`: a
//! copy of its method, URI and headers, with the client's address as [`PeerAddr`] in its
//! extensions. `examples/scenarios` checks a JWT in such a hook.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use realtime_core::Manager;
//! use realtime_ws_actix::{OriginPolicy, WsConfig, WsHandler};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::builder().build()?;
//! let mut config = WsConfig::default();
//! config.origin_policy = OriginPolicy::allow_list(["https://*.example.com"]);
//! let ws = WsHandler::builder(manager).config(config).build()?;
//! HttpServer::new(move || App::new().service(ws.resource("/ws")))
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! actix-web notices a client that went away when it next writes to it: a ping at the latest
//! ([`WsConfig::heartbeat_interval`]). It has no write timeout of its own, and actix-ws
//! queues frames for the server: the session watches the response body the server writes
//! from, so a client that takes nothing for [`WsConfig::write_timeout`] while data waits, or
//! leaves more than [`WsConfig::max_write_buffer`] bytes untaken, is dropped — as on axum
//! (actix-web asks for more only once its write buffer, tens of KiB, has drained: a client
//! must take about that much per write timeout). Set [`on_connect`] on the server so that
//! the kernel frees such a client's socket too.

mod guard;
mod handler;
mod session;

use std::any::Any;
use std::time::Duration;

use actix_web::dev::Extensions;

pub use handler::{WsHandler, WsHandlerBuilder};
/// The request head the authorization hook sees (`Authorize<Parts>`).
pub use http::request::Parts;
pub use realtime_core::auth::{Authorize, Grant, Rejection};
pub use realtime_http::ws::{KeepaliveMessage, OriginPolicy, WsConfig, close_code};
pub use realtime_http::{ApiError, PeerAddr};

/// For `HttpServer::on_connect`: the kernel aborts a connection whose client leaves what it
/// is sent unread for `timeout` (use the write timeout). The endpoint already releases such
/// a client's subscription and slot; this frees its socket and buffers too, which actix-web,
/// stuck writing to it, never would. (Either actix adapter's `on_connect` serves both.)
///
/// ```no_run
/// # use std::time::Duration;
/// # fn server() -> std::io::Result<()> {
/// let server = actix_web::HttpServer::new(|| actix_web::App::new())
///     .on_connect(realtime_ws_actix::on_connect(Duration::from_secs(10)))
///     .bind(("127.0.0.1", 8080))?;
/// # drop(server); Ok(()) }
/// ```
pub fn on_connect(timeout: Duration) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    move |connection, _| {
        if let Some(socket) = connection.downcast_ref::<actix_web::rt::net::TcpStream>()
            && let Err(error) = realtime_http::watch::abort_unread_after(socket, timeout)
        {
            tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT");
        }
    }
}
