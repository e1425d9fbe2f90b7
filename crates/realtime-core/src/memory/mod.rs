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

/// A fresh, hard-to-guess epoch: a new history must never reuse an old history's epoch.
pub(crate) fn fresh_epoch() -> crate::Epoch {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS once per process and perturbed per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    crate::Epoch(hasher.finish().max(1))
}
