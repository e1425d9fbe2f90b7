//! # realtime-nats
//!
//! A [`Bus`](realtime_core::Bus) on NATS: one subject per channel under a configurable
//! prefix, reconnects (which the client makes by itself) reported to every subscription as
//! [`Interrupted`](realtime_core::BusMessage::Interrupted). [`NatsBus`] says what a publish
//! returning `Ok` promises.
//!
//! ```no_run
//! use std::sync::Arc;
//! use realtime_core::{History, Manager};
//! use realtime_nats::{NatsBus, NatsBusConfig};
//!
//! # async fn run() -> realtime_core::Result<()> {
//! let bus = NatsBus::connect(NatsBusConfig::new("nats://127.0.0.1:4222")).await?;
//! // Core NATS keeps no history: each instance keeps its own (or add a shared store).
//! let manager = Manager::builder()
//!     .history(History::PerInstance)
//!     .bus(Arc::new(bus))
//!     .build()?;
//! # drop(manager);
//! # Ok(()) }
//! ```
//!
//! ## Production servers: TLS and credentials
//! `tls://` URLs (or [`NatsBusConfig::tls`], which requires TLS whatever the scheme) with the
//! system's roots or a private CA, and a client certificate for servers that verify
//! clients; [`NatsCredentials`]: user and password, token, NKey seed, or a `.creds` file
//! (text or path) as Synadia Cloud and `nsc` hand out. `user:password@` or `token@` in the
//! URL is used too. Refused credentials are a non-retryable `Config` error naming no secret.
//!
//! ## Subjects
//! A channel is carried in ONE subject token, so each channel has exactly one subject and
//! no channel's subject matches another's: ASCII letters, digits and `- _ : / @ =` are
//! kept, every other byte (`.`, `*`, `>`, `~`, whitespace, non-ASCII) becomes `~` and two
//! upper-case hex digits. `orders.eu` travels on `realtime.orders~2Eeu`. The encoding is
//! reversible; [`NatsBus::subject_of`] gives a channel's subject (for NATS permissions, or
//! to watch it with the `nats` CLI).
//!
//! ## Limits
//! An event larger than the server's `max_payload` (1 MiB by default) is refused at publish
//! with [`Error::InvalidRequest`](realtime_core::Error::InvalidRequest), never truncated.
//!
//! ## Errors
//! Failures are [`realtime_core::Error::Backend`] with backend `"nats"`, naming the
//! operation and the channel: a connection that is down (`Connection`) and a server that
//! does not answer in time (`Timeout`) are retryable.

mod auth;
mod barrier;
mod bus;
mod config;
mod error;
mod link;
mod refusals;
mod subject;

pub use bus::NatsBus;
pub use config::{NatsBusConfig, NatsCredentials, NatsTls};
