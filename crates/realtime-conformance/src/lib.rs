//! # realtime-conformance
//!
//! The cross-backend suite: every [`Store`] and [`Bus`] implementation, and the [`Manager`]
//! running on them, must pass the same public async functions. A backend crate implements
//! [`Backend`] (how to get a fresh store and bus connections against the real server) and
//! generates one test per function with [`conformance_tests!`]:
//!
//! ```ignore
//! mod shared {
//!     realtime_conformance::conformance_tests!(my_backend::TestBackend::connect().await);
//! }
//! mod per_instance {
//!     realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
//!         my_backend::TestBackend::connect().await
//!     ));
//! }
//! ```
//!
//! A function that does not apply to the backend's [`History`] mode returns at once and
//! prints `conformance-skip: <name>: <why>`.
//!
//! Each function panics with a message saying what was expected and what happened. Channel
//! names are unique per run, and each test gets its own [`Backend`] value, so tests may run
//! in parallel against one server.
//!
//! [`Manager`]: realtime_core::Manager

mod bus;
mod compose;
mod delivery;
pub mod exchange;
mod manager;
pub mod measure;
pub mod memory;
mod payload;
mod per_instance;
pub mod restart;
mod store;
mod support;
pub mod tally;
mod tenancy;
pub mod tls;
pub mod transport;

use std::sync::Arc;

use async_trait::async_trait;
use realtime_core::{Bus, History, Result, Store};

pub use bus::*;
pub use compose::{BusOnly, PerInstance, SharedStore, WithStore};
pub use delivery::*;
pub use manager::*;
pub use payload::*;
pub use per_instance::*;
pub use store::*;
pub use tenancy::*;

/// How the suite reaches a backend.
///
/// One value is one isolated namespace (a fresh key prefix, fresh queues, …) on a real server.
#[async_trait]
pub trait Backend: Send + Sync {
    /// The store, shared by every instance of this namespace. Every call returns a handle to
    /// the same data. (In [`History::PerInstance`] mode, see [`PerInstance`], each call is
    /// another instance's own store.)
    async fn store(&self) -> Result<Arc<dyn Store>>;

    /// A new bus connection: every call stands for another server instance.
    async fn bus(&self) -> Result<Arc<dyn Bus>>;

    /// How many events the store keeps per channel (the suite appends more to test trimming).
    fn max_events_per_channel(&self) -> usize;

    /// Destroys a channel's history the way an outage would (an expired or flushed key), so
    /// the next append starts a new epoch.
    async fn lose_history(&self, channel: &str) -> Result<()>;

    /// The history mode the managers run in. The default, [`History::Shared`], runs every
    /// instance on [`Backend::store`]; wrap a backend in [`PerInstance`] for the other mode.
    /// Each suite function runs in the modes it applies to and skips the others, saying so.
    fn history(&self) -> History {
        History::Shared
    }
}

/// The names of every suite function, in the order [`conformance_tests!`] declares them.
pub const ALL: &[&str] = &[
    "store_order",
    "store_replay_from_position",
    "store_exclusive_start",
    "store_limit_gap",
    "store_trimmed_gap",
    "store_unknown_position",
    "store_epoch_change",
    "store_no_history",
    "store_idempotent_append",
    "store_concurrent_appends",
    "store_close",
    "bus_two_instance_fanout",
    "bus_unsubscribe_stops_delivery",
    "bus_close",
    "manager_subscribe_race",
    "manager_resume_gaps",
    "manager_tenant_isolation",
    "manager_tenant_scoped_channels",
    "manager_idempotent_publish",
    "manager_adversarial_names",
    "manager_slow_consumer",
    "manager_skip_with_gap",
    "manager_backlog_on_connect",
    "manager_disconnect_everywhere",
    "manager_data_formats",
    "manager_echo_dedupe",
    "manager_live_gap_repair",
    "manager_multi_channel",
    "manager_join_and_leave",
    "manager_releases_channel",
    "manager_close",
    "history_per_instance_fanout",
    "history_per_instance_linger",
];

/// Generates one `#[tokio::test]` per suite function. `$backend` is an expression (it may
/// `.await`) evaluated once per test, giving a fresh [`Backend`] value.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features as a
/// dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@each $backend;
            store_order, store_replay_from_position, store_exclusive_start, store_limit_gap,
            store_trimmed_gap, store_unknown_position, store_epoch_change, store_no_history,
            store_idempotent_append,
            store_concurrent_appends, store_close, bus_two_instance_fanout,
            bus_unsubscribe_stops_delivery, bus_close, manager_subscribe_race,
            manager_resume_gaps, manager_tenant_isolation, manager_tenant_scoped_channels,
            manager_idempotent_publish, manager_adversarial_names, manager_slow_consumer,
            manager_skip_with_gap, manager_backlog_on_connect, manager_disconnect_everywhere,
            manager_data_formats, manager_echo_dedupe,
            manager_live_gap_repair,
            manager_multi_channel, manager_join_and_leave, manager_releases_channel, manager_close,
            history_per_instance_fanout, history_per_instance_linger
        );
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let backend = $backend;
                $crate::$name(&backend).await;
            }
        )*
    };
}
