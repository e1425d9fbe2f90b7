//! # realtime-core
//!
//! Live events for browsers and services, with exact per-channel replay and fan-out across
//! instances. This crate holds the contracts and the engine; backends (`realtime-redis`, …)
//! implement [`Store`] and [`Bus`], adapters (`realtime-sse-axum`, …) put a [`Client`] on the
//! wire. It performs no network or file I/O.
//!
//! ```
//! use realtime_core::{Manager, Message, PublishRequest, SubscribeRequest};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> realtime_core::Result<()> {
//! let manager = Manager::builder().build()?; // in-memory store and bus
//! let mut sub = manager.subscribe(SubscribeRequest::channel("orders")).await?;
//! let stored = manager.publish(PublishRequest::new("orders", "hello")).await?;
//! let Some(Message::Event(event)) = sub.client.recv().await else { unreachable!() };
//! assert_eq!((event.id, &event.data[..]), (stored.id, &b"hello"[..]));
//! # Ok(()) }
//! ```
//!
//! ## Positions and replay
//! The [`Store`] assigns each event a [`Position`] — `(epoch, offset)` per channel, offsets
//! contiguous, a new epoch whenever the history is lost — when it appends it. The position is
//! the SSE `id:` (an opaque token, [`Position::to_token`]). A client resuming from a token gets
//! either every event after it, or no partial history at all and a [`Gap`] naming the reason
//! ([`GapReason`]) and the head to refetch from.
//!
//! ## Fan-out
//! Each instance holds one bus subscription per channel with local clients. Events arrive
//! from local publishes and from the bus in any order and any number of times; the manager
//! delivers each one once, in offset order, repairing holes from the store (or reporting a
//! gap when the store no longer has them). Every event is wrapped once in a [`SharedEvent`]
//! whose SSE frame is encoded once for all clients.
//!
//! ## Routing
//! Tenants are strict: see [`Route`]. A client without a tenant never sees a tenant's events.

pub mod auth;
mod bus;
pub mod driver;
mod error;
mod event;
pub mod frame;
mod gap;
mod history;
mod manager;
pub mod memory;
pub mod message;
pub mod metrics;
mod payload;
mod position;
pub mod routing;
mod shared;
pub mod sse;
mod store;
pub mod throttle;

pub use bus::{Bus, BusMessage, BusSender, BusSubscription, PublishTarget, SendOutcome};
/// The byte buffer of event data ([`Event::data`], [`PublishRequest::data`]).
pub use bytes::Bytes;
pub use error::{BackendError, BackendErrorKind, BoxError, Error, Result};
pub use event::{DataFormat, Event, NewEvent};
pub use frame::Origin;
pub use gap::{Gap, GapReason};
pub use history::{History, Reach};
pub use manager::{
    CONTROL_CHANNEL, ChannelRequest, Client, CloseReason, Manager, ManagerBuilder, ManagerConfig,
    Message, PublishRequest, Readiness, Replay, SlowConsumer, SubscribeRequest, Subscription,
};
pub use memory::{InMemoryBus, InMemoryStore, InMemoryStoreConfig};
pub use position::{Epoch, InvalidPosition, Position};
pub use routing::Route;
pub use shared::SharedEvent;
pub use store::{ReadResult, Store};
