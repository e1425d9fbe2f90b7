//! # realtime-sse-axum
//!
//! The realtime Server-Sent Events endpoint on axum.
//!
//! ```no_run
//! use axum::Router;
//! use realtime_core::Manager;
//! use realtime_sse_axum::SseHandler;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::builder().build()?;
//! let sse = SseHandler::builder(manager.clone()).build()?;
//! let app: Router = Router::new().route("/events", sse.get());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! Any axum server runs the endpoint. [`Server`] serves a router with the same behaviour but
//! writes event streams itself, so an idle stream holds a few KiB instead of hyper's
//! per-connection buffers (see `BENCHMARKS.md`).
//!
//! ## Request
//! `GET /events?channel=orders` (parameter names configurable in [`SseConfig`]):
//! - `channel` — required, one per stream;
//! - `Last-Event-ID` header, or else `last_event_id` — resume after that position;
//! - `backlog` — for a new subscriber (no position): the channel's newest events to send
//!   before live ones, e.g. `backlog=20` (at most the manager's `replay_limit`; absent: its
//!   `backlog_on_connect`, 0 by default); not digits → 400 `invalid_backlog`;
//! - `tenant`, `subject` — routing, taken from the authorization hook when one is set
//!   ([`SseHandlerBuilder::authorize`]); from the query only if
//!   [`SseConfig::routing_from_query`] allows it, otherwise a request naming them gets 400.
//!
//! ## Authorization
//! The hook is an [`Authorize<Parts>`](Authorize): it sees the request head ([`Parts`]:
//! headers, cookies, the query) and the [`SubscribeRequest`](realtime_core::SubscribeRequest)
//! asked for, and answers a [`Grant`] (tenant, subject, client id) or a [`Rejection`] (401,
//! 403…), sent as the JSON error below.
//!
//! ```no_run
//! use realtime_core::{Manager, SubscribeRequest};
//! use realtime_sse_axum::{Authorize, Grant, Parts, Rejection, SseHandler};
//!
//! # fn build(manager: Manager) -> Result<(), realtime_core::Error> {
//! let hook: Authorize<Parts> = Authorize::new(|parts: &Parts, _asked: &SubscribeRequest| {
//!     // Copy what the check needs out of the borrowed request; the future owns it.
//!     let tenant = parts.headers.get("x-tenant").and_then(|v| v.to_str().ok()).map(str::to_owned);
//!     async move {
//!         let tenant = tenant.ok_or_else(|| Rejection::unauthorized("who are you?"))?;
//!         Ok(Grant { tenant: Some(tenant), ..Grant::default() })
//!     }
//! });
//! let sse = SseHandler::builder(manager).authorize(hook).build()?;
//! # let _ = sse; Ok(()) }
//! ```
//!
//! (A real hook checks a credential: `examples/scenarios/src/bin/jwt_tenants.rs` verifies a
//! JWT from a header, a cookie or the query.)
//!
//! ## Response
//! `200`, `Content-Type: text/event-stream`, `Cache-Control: no-cache`,
//! `X-Accel-Buffering: no`, then:
//! 1. `retry: <SseConfig::retry_ms>` and `: client_id <id>` (the connection's id);
//! 2. the replay — every event after the resume position, each with `id:` its position;
//! 3. `: connected`;
//! 4. live events (`id:`, `event:` the type, `retry:` when the event sets one, `data:`), and a
//!    `:` heartbeat comment after each `heartbeat_interval` without traffic;
//! 5. when the manager closes the client (shutdown, slow consumer, disconnect) a final
//!    `: closed: <reason>` comment and the end of the stream; a browser's `EventSource`
//!    reconnects by itself with `Last-Event-ID`.
//!
//! ## The gap signal
//! When the replay cannot be exact (the position is malformed or unknown, its history was
//! lost, trimmed, or is longer than the replay limit), or a live hole cannot be repaired, the
//! stream carries, instead of a partial history:
//!
//! ```text
//! id: 9f3a0c21b4e5d6f7-1200
//! event: realtime-gap
//! data: {"channel":"orders","reason":"trimmed","head":"9f3a0c21b4e5d6f7-1200"}
//! ```
//!
//! `reason` is `unknown_position`, `epoch_changed`, `trimmed`, `limit`, `dropped` or `lost`
//! (per-instance history only; see [`GapReason`](realtime_core::GapReason)); `head` is
//! the channel's newest position. Listen with `source.addEventListener("realtime-gap", …)`,
//! refetch the state, and keep the stream: it continues with the events after `head` (the
//! `id:` makes a reconnect resume from there too). Publishers cannot send this event type.
//!
//! ## Errors
//! JSON `{"error": code, "message": text}`: 400 `invalid_channel` / `invalid_request` /
//! `routing_not_allowed`, 401 `unauthorized` or 403 `forbidden` from the hook, 503 `too_many_connections` or
//! `shutting_down` with `Retry-After`, 500 `backend_error` when the store fails.

mod error;
mod handler;
mod prefixed;
mod respond;
mod serve;

pub use error::ApiError;
pub use handler::{SseHandler, SseHandlerBuilder};
/// The request head the authorization hook sees (`Authorize<Parts>`).
pub use http::request::Parts;
pub use realtime_core::auth::{Authorize, Grant, Rejection};
pub use realtime_http::settle_routing;
pub use realtime_http::{PeerAddr, SseConfig, SseEndpoint, SseStream};
pub use serve::Server;
