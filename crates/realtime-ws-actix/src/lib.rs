//! # realtime-ws-actix
//!
//! The realtime WebSocket endpoint on actix-web 4, on `actix-ws`: the same protocol, origin
//! policy, topics, authorization hook, read limit (1009), write timeout, pings, keepalive and
//! close codes as `realtime-ws` on axum — both run `realtime-http`'s engine
//! ([`realtime_http::ws`]); this crate is the actix upgrade and socket loop. (A sibling crate
//! rather than a feature of `realtime-ws`: each adapter knows one framework, so enabling both
//! never mixes two frameworks' dependency trees in one crate.)
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
//! leaves more than [`WsConfig::max_write_buffer`] bytes untaken, is dropped — as on axum.

mod guard;
mod handler;
mod session;

pub use handler::{WsHandler, WsHandlerBuilder};
pub use realtime_http::ws::{OriginPolicy, WsConfig, close_code};
