//! A namespace of a Redis server as the shared store other backends' conformance and fault
//! tests run with (feature `conformance`).

use std::sync::Arc;

use realtime_conformance::SharedStore;

use crate::{DEFAULT_URL, RedisStore, RedisStoreConfig};

/// Where the tests expect Redis: `REALTIME_REDIS_URL`, else [`DEFAULT_URL`].
pub fn url() -> String {
    std::env::var("REALTIME_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.into())
}

/// A store on the test Redis under `prefix`, keeping `max_events` per channel; panics,
/// saying how to start Redis, if it is not there.
pub async fn store_at(prefix: &str, max_events: usize) -> Arc<RedisStore> {
    let config = RedisStoreConfig {
        url: url(),
        prefix: prefix.to_owned(),
        max_events_per_channel: max_events,
        ..RedisStoreConfig::default()
    };
    match RedisStore::connect(config).await {
        Ok(store) => Arc::new(store),
        Err(error) => panic!(
            "these tests need Redis at {} (`cargo xtask services` starts it): {error}",
            url()
        ),
    }
}

/// A fresh namespace of the test Redis as the suite's shared store (its history lost with
/// [`RedisStore::forget`]).
pub async fn shared_store(max_events: usize) -> SharedStore {
    let prefix = format!("rt-test:{:016x}:", realtime_core::Epoch::fresh().0);
    let store = store_at(&prefix, max_events).await;
    let forget = store.clone();
    SharedStore::new(store, max_events, move |channel| {
        let store = forget.clone();
        async move { store.forget(&channel).await }
    })
}
