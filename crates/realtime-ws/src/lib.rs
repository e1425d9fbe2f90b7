//! # realtime-ws
//!
//! The realtime WebSocket endpoint on axum: the Go package's `ws` (origin policy, topics,
//! read limit, write timeout, pings, keepalive, `RequireAuth`) over a [`Manager`] client, with
//! resume by position. The protocol is `realtime-http`'s engine
//! ([`realtime_http::ws`]); this crate is the axum upgrade and the socket loop.
//!
//! The authorization hook is an `Authorize<Parts>` (both re-exported here, with [`Grant`] and
//! [`Rejection`]), written as for SSE:
//! `Authorize::new(|parts: &Parts, asked: &SubscribeRequest| { /* copy from parts */ async move { Ok(Grant::default()) } })`,
//! where [`Parts`] is the upgrade request's head (headers, query, extensions); it answers
//! each subscription, a refusal arriving in-band as an `error` message. `examples/scenarios`
//! checks a JWT in such a hook.
//!
//! ```no_run
//! use axum::Router;
//! use realtime_core::Manager;
//! use realtime_ws::{OriginPolicy, WsConfig, WsHandler};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::builder().build()?;
//! let mut config = WsConfig::default();
//! config.origin_policy = OriginPolicy::allow_list(["https://*.example.com"]);
//! let ws = WsHandler::builder(manager).config(config).build()?;
//! let app: Router = Router::new().route("/ws", ws.get());
//! # let _ = app; Ok(()) }
//! ```
//!
//! ## Before the upgrade
//! In this order, each answered with a JSON error `{"error": code, "message": text}`:
//! 1. the `Origin` against [`WsConfig::origin_policy`] → 403 `origin_not_allowed`;
//! 2. no `Upgrade` header → 426 `upgrade_required`; other bad upgrade headers → 400 (405 for a
//!    method other than GET) `invalid_upgrade`;
//! 3. `topics` (separators `,` `;` whitespace; duplicates removed; the channel-name rule of
//!    every transport: letters, digits, `-` `_` `.` `:` `/` `@`; count and length limits) →
//!    400 `invalid_topic` naming the topic;
//! 4. `tenant` or `subject` given twice → 400 `invalid_request`; the authorization hook
//!    ([`WsHandlerBuilder::authorize`]) → 401/403; its grant sets the tenant and subject;
//! 5. the manager's limits → 503 `too_many_connections` with `Retry-After` (another status
//!    with [`WsConfig::over_capacity_status`], e.g. the Go package's 429).
//!
//! ## Protocol
//! Text frames of JSON (and binary frames for binary data, from the server). From the client:
//! - `{"type":"subscribe","topics":["a","b"],"last_event_ids":{"a":"<id>"},"backlog":20}` —
//!   join topics; the authorization hook runs again for the topics it adds (a refusal is an
//!   `error` message `unauthorized`/`forbidden`, and nothing is joined); a topic with a last
//!   event id (joined or not) is replayed exactly after that id, or gets a gap message; the
//!   others get their `backlog` newest events first (optional; at most the manager's
//!   `replay_limit`; absent: its `backlog_on_connect`, 0 by default); answered with
//!   `{"type":"subscribed","topics":[…]}` after the replay;
//! - `{"type":"unsubscribe","topics":["a"]}` → `{"type":"unsubscribed","topics":[…]}`;
//! - `{"type":"ping"}` → `{"type":"pong"}`.
//!
//! From the server:
//! - `{"type":"subscribed","topics":[…],"client_id":"…"}` first, for the `topics` of the
//!   URL, with the connection's client id ([`WsConfig::client_id_header`], or the hook's
//!   grant, else generated), then their
//!   backlog (`?backlog=20` on the URL, as above);
//! - `{"type":"event","channel":"a","id":"<id>","event":"<type>","data":"<payload>"}` (`event`
//!   only when the event has a type); keep the newest `id` per channel to resume with. `data`
//!   is as the event was published ([`DataFormat`](realtime_core::DataFormat)): text as a
//!   string; JSON as the value itself, with `"format":"json"`
//!   (`{"type":"event",…,"format":"json","data":{"n":1}}`: parse the message once, not its
//!   data again); binary data as a **binary** frame, the message's JSON without `data` (with
//!   `"format":"binary"`), a `\n`, then the bytes;
//! - `{"type":"gap","channel":"a","reason":"…","head":"<id>"}` — as the SSE `realtime-gap`:
//!   refetch state as of `head`; events continue after it;
//! - `{"type":"keepalive","timestamp":"2026-11-30T07:08:09.123Z"}` (RFC 3339, UTC) every
//!   [`WsConfig::keepalive_interval`], or the message of [`WsConfig::keepalive_message`];
//! - `{"type":"error","code":"…","message":"…"}` for a message that is not valid JSON of the
//!   protocol (`invalid_message`), a bad topic (`invalid_topic`), too many topics
//!   (`too_many_topics`), a binary frame (`binary_not_supported`), a subscribe the hook
//!   refused (`unauthorized`, `forbidden`), a failed subscribe (`subscribe_failed`). The
//!   connection stays open.
//!
//! WebSocket pings go out every [`WsConfig::heartbeat_interval`]; pongs are answered
//! automatically.
//!
//! ## Close codes
//! 1000 `disconnected` (the manager disconnected the client), 1001 `shutdown` (reconnect,
//! possibly elsewhere), 1002 (the client broke the WebSocket protocol), 1007 (a text frame
//! was not UTF-8), 1009 (a message over [`WsConfig::read_limit`]), 1013 `slow_consumer` (the
//! client's queue overflowed: reconnect and resume with its last ids). See [`close_code`].
//! After its close frame the server reads and discards what the client still sends (for up
//! to 2 s and 16 MiB), so a client still writing sees the code, not a reset.
//!
//! The handshake is checked before the upgrade: `Connection: upgrade`, `Upgrade: websocket`,
//! `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` of 16 base64 bytes, each once, or
//! 400 `invalid_upgrade`. WebSocket needs HTTP/1.1 (no HTTP/2 extended CONNECT).
//!
//! [`Manager`]: realtime_core::Manager

mod handler;
mod session;
mod upgrade;

pub use handler::{WsHandler, WsHandlerBuilder};
/// The request head the authorization hook sees (`Authorize<Parts>`).
pub use http::request::Parts;
pub use realtime_core::auth::{Authorize, Grant, Rejection};
pub use realtime_http::ws::{
    KeepaliveMessage, OriginCheck, OriginPolicy, TopicError, WsConfig, check_topic, close_code,
    parse_topics,
};
pub use realtime_http::{ApiError, PeerAddr};
