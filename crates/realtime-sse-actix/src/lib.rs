//! # realtime-sse-actix
//!
//! The realtime SSE endpoint on actix-web 4: glue over `realtime-http`'s framework-neutral
//! [`SseEndpoint`], so it has the axum adapter's behaviour exactly — the same query
//! parameters, `Last-Event-ID` rules, authorization hook, JSON errors and status codes,
//! replay → `: connected` → live events, heartbeats, gap signal and shutdown.
//!
//! The authorization hook is an `Authorize<Parts>` (both re-exported here, with [`Grant`] and
//! [`Rejection`]). [`Parts`] is the `http` 1.x request head — not actix's `HttpRequest`: a
//! copy of the method, URI, version and headers, plus the client's address as [`PeerAddr`]
//! in its extensions (actix's own extensions and app data are not carried over):
//!
//! ```no_run
//! use realtime_core::{Manager, SubscribeRequest};
//! use realtime_sse_actix::{Authorize, Grant, Parts, PeerAddr, Rejection, SseHandler};
//!
//! # fn build(manager: Manager) -> Result<(), realtime_core::Error> {
//! let hook: Authorize<Parts> = Authorize::new(|parts: &Parts, _asked: &SubscribeRequest| {
//!     // Copy what the check needs out of the borrowed head; the future owns it.
//!     let tenant = parts.headers.get("x-tenant").and_then(|v| v.to_str().ok()).map(str::to_owned);
//!     let peer = parts.extensions.get::<PeerAddr>().map(|peer| peer.0);
//!     async move {
//!         tracing::debug!(?peer, "subscribe");
//!         let tenant = tenant.ok_or_else(|| Rejection::unauthorized("who are you?"))?;
//!         Ok(Grant { tenant: Some(tenant), ..Grant::default() })
//!     }
//! });
//! let sse = SseHandler::builder(manager).authorize(hook).build()?;
//! # let _ = sse; Ok(()) }
//! ```
//!
//! `examples/scenarios` checks a JWT in such a hook.
//!
//! Mounting it is one line in an `App`:
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use realtime_core::Manager;
//! use realtime_sse_actix::SseHandler;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::builder().build()?;
//! let sse = SseHandler::builder(manager).build()?;
//! HttpServer::new(move || App::new().service(sse.resource("/events")))
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! What the framework changes:
//! - actix-web notices a client that went away when it next writes to it, so the client's
//!   subscription (and its connection slot) is released at the next event or heartbeat at the
//!   latest ([`SseConfig::heartbeat_interval`], 15 s by default), where the axum adapter's
//!   `Server` notices at once.
//! - actix-web has no write timeout: the endpoint watches its own response body, and a
//!   client that takes nothing for [`SseConfig::write_timeout`] while data waits is cut (its
//!   subscription and slot released, `realtime_write_timeouts_total{transport="sse"}`).
//!   actix-web asks for more only once its write buffer (tens of KiB) has drained, so a client
//!   must take about that much per write timeout (≈1 KiB/s at the default 30 s). The socket
//!   itself is freed by the kernel with [`on_connect`] set on the server (it stays open
//!   until the client leaves otherwise).
//! - The client's address reaches the authorization hook as `realtime_http::PeerAddr` in
//!   the request's extensions; `HEAD` is answered as `GET` without the body.
//!
//! [`SseEndpoint`]: realtime_http::SseEndpoint
//! [`SseConfig::heartbeat_interval`]: realtime_http::SseConfig::heartbeat_interval
//! [`SseConfig::write_timeout`]: realtime_http::SseConfig::write_timeout

mod handler;
mod request;

use std::any::Any;
use std::time::Duration;

use actix_web::dev::Extensions;

pub use handler::{SseHandler, SseHandlerBuilder};
/// The request head the authorization hook sees (`Authorize<Parts>`).
pub use http::request::Parts;
pub use realtime_core::auth::{Authorize, Grant, Rejection};
pub use realtime_http::{ApiError, PeerAddr, SseConfig};
pub use request::{error_response, parts_of};

/// For `HttpServer::on_connect`: the kernel aborts a connection whose client leaves what it
/// is sent unread for `timeout` (use the write timeout). The endpoint already releases such
/// a client's subscription and slot; this frees its socket and buffers too, which actix-web,
/// stuck writing to it, never would. (Either actix adapter's `on_connect` serves both.)
///
/// ```no_run
/// # use std::time::Duration;
/// # fn server() -> std::io::Result<()> {
/// let server = actix_web::HttpServer::new(|| actix_web::App::new())
///     .on_connect(realtime_sse_actix::on_connect(Duration::from_secs(30)))
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
