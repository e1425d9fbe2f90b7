//! # realtime-http
//!
//! What every realtime endpoint means by an HTTP request, whatever framework serves it: one
//! rule for query parameters, the choice of the resume position, the authorization and
//! routing step, the table from [`realtime_core::Error`] to a status, a JSON error code and
//! `Retry-After`, the whole SSE endpoint ([`SseEndpoint`]: request → [`SseStream`], a
//! `Stream` of byte chunks), and the WebSocket protocol as an engine with no socket I/O
//! ([`ws::WsEndpoint`] for the checks before the upgrade, [`ws::WsSession`] after it). It uses the `http` crate's types only (and tokio's timer for
//! heartbeats); framework adapters (`realtime-sse-axum`, `realtime-ws`) turn their requests
//! into [`http::request::Parts`], an [`SseStream`] into their response body and an
//! [`ApiError`] into their response type.
//!
//! ```
//! use realtime_http::{ApiError, Query};
//!
//! let query = Query::parse("channel=orders&last_event_id=");
//! assert_eq!(query.single("channel").unwrap().as_deref(), Some("orders"));
//! assert_eq!(query.single("last_event_id").unwrap(), None, "empty is absent");
//! let twice = Query::parse("channel=a&channel=b").single("channel").unwrap_err();
//! assert_eq!((twice.status.as_u16(), twice.code), (400, "invalid_request"));
//! let response = ApiError::from(realtime_core::Error::Closed).to_response();
//! assert_eq!(response.status(), 503);
//! assert_eq!(response.headers()["retry-after"], "1");
//! ```

mod builder;
mod error;
mod head;
mod query;
mod routing;
mod sse_config;
mod stream;
pub mod watch;
pub mod ws;

pub use builder::{EndpointBuilder, FromParts};
pub use error::ApiError;
pub use head::{PeerAddr, ambiguous_host, check_host, request_head};
pub use query::{Query, resume_position};
pub use routing::settle_routing;
pub use sse_config::SseConfig;
pub use stream::{SseEndpoint, SseStream};
