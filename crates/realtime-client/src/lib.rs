//! # realtime-client
//!
//! Consume a realtime server from a Rust service: over SSE or WebSocket, reconnecting with
//! back-off after every cut and resuming each channel after the newest event it saw, so the
//! stream carries every event once and in order — or an explicit gap where the server could
//! not replay (then refetch that channel's state).
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use realtime_client::{RealtimeClient, Update};
//!
//! # async fn run() -> Result<(), realtime_client::Error> {
//! let mut client = RealtimeClient::websocket("ws://127.0.0.1:8080/ws")
//!     .channel("orders")
//!     .header("authorization", "Bearer …")
//!     .build()?;
//! while let Some(update) = client.next().await {
//!     match update? {
//!         Update::Event(event) => println!("{} {}: {:?}", event.channel, event.id, event.text()),
//!         Update::Gap { channel, .. } => println!("refetch {channel}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! - **Transports.** [`RealtimeClient::websocket`]: any number of channels, JSON data as
//!   JSON, binary data as bytes. [`RealtimeClient::sse`]: one channel per client, data as
//!   text (binary data base64, JSON as its text).
//! - **Resume.** The newest id per channel is kept ([`RealtimeClient::last_event_id`]); persist
//!   it and start the next run with [`ClientBuilder::resume`] to continue across restarts.
//! - **Failures.** Retryable ones (a refused connection, 5xx/429 — `Retry-After` honoured —, a
//!   cut, a close, an idle connection) arrive as [`Update::Disconnected`] and the client
//!   reconnects; the others (400, 401, 403, 404, a refused subscription) end the stream with an
//!   `Err`. Memory is bounded: messages over [`ClientBuilder::max_message_bytes`] end the
//!   connection, and at most [`ClientBuilder::buffer`] updates wait for the reader.
//! - **TLS.** `https://` and `wss://` URLs connect with rustls (aws-lc-rs), trusting the
//!   operating system's roots; add a private CA with [`ClientBuilder::root_certificate_pem`],
//!   or trust only it with [`ClientBuilder::system_roots`]`(false)`. A certificate the client
//!   does not trust fails each attempt as [`Error::Connect`], naming the reason, and the client
//!   keeps retrying with back-off (a renewed certificate needs no restart). The system's roots
//!   are read once per process. No proxy is used (`HTTP_PROXY` and the like are not read).

mod client;
mod config;
mod error;
mod http;
mod outlet;
mod sse;
mod tls;
mod update;
mod ws;

/// The byte buffer of event data ([`ReceivedEvent::data`]).
pub use bytes::Bytes;
pub use client::RealtimeClient;
pub use config::{ClientBuilder, Transport};
pub use error::Error;
pub use realtime_core::DataFormat;
pub use update::{ReceivedEvent, Update};
