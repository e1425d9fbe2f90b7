//! In-memory [`Store`](crate::Store) and [`Bus`](crate::Bus): one process, no persistence.
//!
//! The default for development, tests and single-instance deployments. Histories live as long
//! as the process (a restart starts new epochs, so old positions get an honest
//! `epoch_changed` gap), and several [`Manager`](crate::Manager)s in one process can share
//! them to act as a cluster.

mod bus;
mod store;

pub use bus::InMemoryBus;
pub use store::{InMemoryStore, InMemoryStoreConfig};
