//! # realtime-sse-actix
//!
//! The realtime SSE endpoint on actix-web 4: glue over `realtime-http`'s framework-neutral
//! [`SseEndpoint`], so it has the axum adapter's behaviour exactly — the same query
//! parameters, `Last-Event-ID` rules, authorization hook, JSON errors and status codes,
//! replay → `: connected` → live events, heartbeats, gap signal and shutdown.
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
//!   subscription and slot released, `realtime_write_timeouts_total{transport="sse"}`). The
//!   socket itself stays open until the client or the kernel closes it.
//! - The client's address reaches the authorization hook as `realtime_http::PeerAddr` in
//!   the request's extensions; `HEAD` is answered as `GET` without the body.
//!
//! [`SseEndpoint`]: realtime_http::SseEndpoint
//! [`SseConfig::heartbeat_interval`]: realtime_http::SseConfig::heartbeat_interval
//! [`SseConfig::write_timeout`]: realtime_http::SseConfig::write_timeout

mod handler;
mod request;

pub use handler::{SseHandler, SseHandlerBuilder};
pub use request::{error_response, parts_of};
