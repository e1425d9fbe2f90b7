//! The in-memory store's own bounds: expiry, eviction, bytes, and reads that store nothing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use realtime_core::{
    Epoch, Error, GapReason, InMemoryStore, InMemoryStoreConfig, NewEvent, Position, Store,
};

#[tokio::test(start_paused = true)]
async fn idle_channels_expire_with_a_new_epoch() {
    let store = {
        let mut config = InMemoryStoreConfig::default();
        config.idle_ttl = Duration::from_secs(60);
        config
    }
    .build()
    .unwrap();
    let first = store.append(NewEvent::new("a", "1")).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    let again = store.append(NewEvent::new("a", "2")).await.unwrap();
    assert_ne!(first.id.epoch, again.id.epoch);
    assert_eq!(again.id.offset, 1);
    // Sweeping also drops channels nobody touches.
    store.append(NewEvent::new("b", "1")).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    store.head("c").await.unwrap();
    assert_eq!(store.channel_count(), 0);
    assert_eq!(store.bytes(), 0);
}

/// A key whose event was trimmed is used again: counted once, not once per use (the
/// inflated total would evict other channels — other tenants' history).
#[tokio::test]
async fn reused_idempotency_keys_are_counted_once() {
    let store = {
        let mut config = InMemoryStoreConfig::default();
        config.max_events_per_channel = 2;
        config
    }
    .build()
    .unwrap();
    for i in 0..30_000u32 {
        let mut event = NewEvent::new("c", "x");
        event.idempotency_key = Some(format!("key-{}", i % 3));
        store.append(event).await.unwrap();
    }
    // Two events and three keys: a few hundred bytes, whatever the number of appends.
    assert!(
        store.bytes() < 2_000,
        "{} bytes for 2 events",
        store.bytes()
    );
    let other = store.append(NewEvent::new("other", "y")).await.unwrap();
    assert_eq!(store.head("other").await.unwrap(), other.id);
}

#[tokio::test]
async fn least_recently_used_channel_is_evicted_past_the_limit() {
    let store = {
        let mut config = InMemoryStoreConfig::default();
        config.max_channels = 2;
        config
    }
    .build()
    .unwrap();
    for channel in ["a", "b", "c"] {
        store.append(NewEvent::new(channel, "x")).await.unwrap();
    }
    assert_eq!(store.channel_count(), 2);
    assert!(
        store.head("a").await.unwrap().epoch == Epoch::NONE,
        "the least recently used channel went"
    );
}

#[tokio::test]
async fn reading_unknown_channels_stores_nothing() {
    let store = InMemoryStore::new();
    for i in 0..1_000 {
        let channel = format!("nobody-{i}");
        let read = store
            .read(&channel, Position::start(Epoch(7)), 10)
            .await
            .unwrap();
        assert_eq!(read.head, Position::start(Epoch::NONE));
        assert_eq!(read.gap, Some(GapReason::EpochChanged));
        store.head(&channel).await.unwrap();
    }
    assert_eq!((store.channel_count(), store.bytes()), (0, 0));
    // The first event starts a real epoch; reading after NONE reads from it.
    let first = store.append(NewEvent::new("c", "1")).await.unwrap();
    assert_ne!(first.id.epoch, Epoch::NONE);
    let read = store
        .read("c", Position::start(Epoch::NONE), 10)
        .await
        .unwrap();
    assert_eq!((read.events.len(), read.gap), (1, None));
}

#[tokio::test]
async fn bytes_are_bounded_per_channel_and_in_total() {
    let store = {
        let mut config = InMemoryStoreConfig::default();
        config.max_bytes_per_channel = 10_000;
        config.max_bytes = 50_000;
        config
    }
    .build()
    .unwrap();
    let big = "x".repeat(4_000);
    for i in 0..100 {
        store
            .append(NewEvent::new(format!("c{}", i % 20), big.clone()))
            .await
            .unwrap();
        assert!(store.bytes() <= 50_000, "{} bytes", store.bytes());
    }
    for _ in 0..5 {
        store
            .append(NewEvent::new("solo", big.clone()))
            .await
            .unwrap();
    }
    let newest = store.head("solo").await.unwrap();
    let read = store
        .read("solo", Position::start(newest.epoch), 100)
        .await
        .unwrap();
    assert_eq!(
        read.gap,
        Some(GapReason::Trimmed),
        "old events trimmed by bytes"
    );
    assert_eq!(read.oldest, 4, "two 4 KB events fit in 10 KB");
    // One event larger than the channel budget is still kept (the newest always is).
    let huge = store
        .append(NewEvent::new("huge", "y".repeat(20_000)))
        .await
        .unwrap();
    let read = store
        .read("huge", Position::start(huge.id.epoch), 10)
        .await
        .unwrap();
    assert_eq!(read.events.len(), 1);
}

#[test]
fn invalid_config_is_rejected() {
    let bad = {
        let mut config = InMemoryStoreConfig::default();
        config.max_events_per_channel = 0;
        config
    };
    assert!(matches!(bad.build(), Err(Error::InvalidConfig { .. })));
}
