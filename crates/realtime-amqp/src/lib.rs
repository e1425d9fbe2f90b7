//! # realtime-amqp
//!
//! A [`Bus`](realtime_core::Bus) on RabbitMQ (AMQP 0-9-1, through lapin): an exclusive
//! queue per instance bound to a direct exchange under each subscribed channel's name,
//! publisher confirms, and a bus that reconnects, redeclares and rebinds by itself. The Go
//! package's third event-bus option. [`AmqpBus`] says what a publish returning `Ok` promises.
//!
//! ```no_run
//! use std::sync::Arc;
//! use realtime_core::{History, Manager};
//! use realtime_amqp::{AmqpBus, AmqpBusConfig};
//!
//! # async fn run() -> realtime_core::Result<()> {
//! let bus = AmqpBus::connect(AmqpBusConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f")).await?;
//! // The broker keeps no history for the bus: each instance keeps its own (or add a shared store).
//! let manager = Manager::builder()
//!     .history(History::PerInstance)
//!     .bus(Arc::new(bus))
//!     .build()?;
//! # drop(manager);
//! # Ok(()) }
//! ```
//!
//! ## TLS
//! `amqps://` URLs connect over TLS (rustls, the system's roots); [`AmqpBusConfig::tls`]
//! adds a private CA and a client certificate, which `?auth_mechanism=external` in the URL
//! uses to log in (RabbitMQ's `rabbitmq_auth_mechanism_ssl`). Refused credentials are a
//! non-retryable `Config` error naming no password.
//!
//! ## Limits
//! A channel name is a routing key: at most 255 bytes (the manager's own limit is lower by
//! default). `amqps://` is not built in this version.
//!
//! ## Errors
//! Failures are [`realtime_core::Error::Backend`] with backend `"amqp"`, naming the
//! operation and the channel: a connection that is down or broken (`Connection`) and a
//! broker that does not answer or confirm in time (`Timeout`) are retryable.

mod bus;
mod config;
mod error;
mod link;
mod recover;

pub use bus::AmqpBus;
pub use config::{AmqpBusConfig, AmqpTls, DEFAULT_URL};
