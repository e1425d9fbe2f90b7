//! The [`Store`](realtime_core::Store) contract.

use std::collections::BTreeSet;
use std::sync::Arc;

use realtime_core::{Epoch, Error, Event, GapReason, History, NewEvent, Position, Store};

use crate::Backend;
use crate::support::{channel, ok, runs_in, text};

async fn append_n(store: &Arc<dyn Store>, channel: &str, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    for i in 1..=n {
        events.push(ok(
            store.append(NewEvent::new(channel, format!("e{i}"))).await,
            "append",
        ));
    }
    events
}

/// Appends get contiguous offsets from 1 in one epoch, and read back in order.
pub async fn store_order(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_order") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("order");
    let appended = append_n(&store, &ch, 20).await;
    let epoch = appended[0].id.epoch;
    for (i, event) in appended.iter().enumerate() {
        assert_eq!(
            event.id,
            Position::new(epoch, i as u64 + 1),
            "append {i} got position {}",
            event.id
        );
        assert_eq!(event.channel, ch);
    }
    let read = ok(store.read(&ch, Position::start(epoch), 100).await, "read");
    assert_eq!(read.gap, None, "a read of everything must be exact");
    assert_eq!(read.head, Position::new(epoch, 20));
    assert_eq!(
        read.events, appended,
        "read must return the appended events in order"
    );
    assert_eq!(ok(store.head(&ch).await, "head"), Position::new(epoch, 20));
}

/// Reading from a position returns exactly the later events, with every field intact.
pub async fn store_replay_from_position(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_replay_from_position") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("replay");
    let mut appended = append_n(&store, &ch, 9).await;
    let mut rich = NewEvent::new(&ch, "line 1\nline 2 \u{e9}");
    rich.tenant = Some("tenant-a".into());
    rich.subject = Some("alice".into());
    rich.event_type = Some("order.created".into());
    rich.retry_ms = Some(1234);
    appended.push(ok(store.append(rich).await, "append rich"));
    let from = appended[3].id;
    let read = ok(store.read(&ch, from, 100).await, "read");
    assert_eq!(read.gap, None);
    assert_eq!(
        read.events,
        appended[4..].to_vec(),
        "replay after offset 4 must be 5..=10, intact"
    );
    let last = &read.events[5];
    assert_eq!(text(last), "line 1\nline 2 \u{e9}");
    assert_eq!(last.tenant.as_deref(), Some("tenant-a"));
    assert_eq!(last.retry_ms, Some(1234));
}

/// The start position is exclusive; reading from the head gives nothing and no gap.
pub async fn store_exclusive_start(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_exclusive_start") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("exclusive");
    let appended = append_n(&store, &ch, 10).await;
    let head = appended[9].id;
    let at_head = ok(store.read(&ch, head, 10).await, "read at head");
    assert!(
        at_head.events.is_empty() && at_head.gap.is_none(),
        "read at head: {at_head:?}"
    );
    let last_one = ok(store.read(&ch, appended[8].id, 10).await, "read after 9");
    assert_eq!(last_one.events, vec![appended[9].clone()]);
    assert_eq!(last_one.gap, None);
}

/// More events than the limit: the first `limit` of them and a `limit` gap.
pub async fn store_limit_gap(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_limit_gap") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("limit");
    let appended = append_n(&store, &ch, 10).await;
    let epoch = appended[0].id.epoch;
    let read = ok(store.read(&ch, Position::start(epoch), 3).await, "read");
    assert_eq!(read.gap, Some(GapReason::Limit));
    assert_eq!(read.events, appended[..3].to_vec());
    assert_eq!(read.head, appended[9].id);
    let rest = ok(store.read(&ch, appended[6].id, 3).await, "read rest");
    assert_eq!(rest.gap, None, "exactly `limit` remaining is exact");
    assert_eq!(rest.events, appended[7..].to_vec());
}

/// A position whose successor was trimmed gives a `trimmed` gap and no events.
pub async fn store_trimmed_gap(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_trimmed_gap") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("trimmed");
    let max = backend.max_events_per_channel();
    let appended = append_n(&store, &ch, max + 5).await;
    let read = ok(
        store.read(&ch, appended[0].id, max + 10).await,
        "read trimmed",
    );
    assert_eq!(
        read.gap,
        Some(GapReason::Trimmed),
        "offset 2 must be trimmed after {} appends",
        max + 5
    );
    assert!(read.events.is_empty(), "no partial history on a gap");
    assert_eq!(read.head, appended[max + 4].id);
    assert!(
        read.oldest > 2 && read.oldest <= 6,
        "oldest retained offset {}",
        read.oldest
    );
    let tail_start = appended[max + 4 - max].id;
    let tail = ok(store.read(&ch, tail_start, max + 10).await, "read tail");
    assert_eq!(tail.gap, None, "the newest {max} events must be retained");
    assert_eq!(tail.events.len(), max);
}

/// A position beyond the head is unknown.
pub async fn store_unknown_position(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_unknown_position") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("unknown");
    let appended = append_n(&store, &ch, 3).await;
    let future = Position::new(appended[0].id.epoch, 8);
    let read = ok(store.read(&ch, future, 10).await, "read");
    assert_eq!(read.gap, Some(GapReason::UnknownPosition));
    assert!(read.events.is_empty());
    assert_eq!(read.head, appended[2].id);
}

/// Losing the history starts a new epoch; old positions get an `epoch_changed` gap.
pub async fn store_epoch_change(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_epoch_change") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("epoch");
    let before = append_n(&store, &ch, 3).await;
    ok(backend.lose_history(&ch).await, "lose history");
    let after = ok(
        store.append(NewEvent::new(&ch, "new")).await,
        "append after loss",
    );
    assert_ne!(
        after.id.epoch, before[0].id.epoch,
        "a lost history must get a new epoch"
    );
    assert_eq!(after.id.offset, 1, "a new epoch starts at offset 1");
    let read = ok(store.read(&ch, before[1].id, 10).await, "read old position");
    assert_eq!(read.gap, Some(GapReason::EpochChanged));
    assert!(read.events.is_empty());
    assert_eq!(read.head, after.id);
}

/// A channel without history has the head `start(Epoch::NONE)`, reading it creates nothing,
/// and reading after that head reads from the first event of the history that follows.
pub async fn store_no_history(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_no_history") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("nohistory");
    let none = Position::start(Epoch::NONE);
    assert_eq!(ok(store.head(&ch).await, "head"), none);
    let read = ok(store.read(&ch, none, 10).await, "read after none");
    assert_eq!((read.head, read.gap), (none, None));
    let read = ok(
        store.read(&ch, Position::new(Epoch(7), 3), 10).await,
        "read",
    );
    assert_eq!((read.head, read.gap), (none, Some(GapReason::EpochChanged)));
    let read = ok(
        store.read(&ch, Position::new(Epoch::NONE, 3), 10).await,
        "read",
    );
    assert_eq!(read.gap, Some(GapReason::UnknownPosition));
    let appended = append_n(&store, &ch, 3).await;
    assert_ne!(
        appended[0].id.epoch,
        Epoch::NONE,
        "a history gets a real epoch"
    );
    assert_eq!(appended[0].id.offset, 1);
    let read = ok(store.read(&ch, none, 10).await, "read after none");
    assert_eq!(read.gap, None);
    assert_eq!(read.events, appended, "after none: from the first event");
    let read = ok(store.read(&ch, none, 2).await, "read after none, limited");
    assert_eq!((read.events.len(), read.gap), (2, Some(GapReason::Limit)));
}

/// An append with an idempotency key the channel already holds appends nothing and returns
/// the first position; once that event is trimmed, the key is forgotten.
pub async fn store_idempotent_append(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_idempotent_append") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("idempotent");
    let keyed = |data: &str, key: &str| {
        let mut event = NewEvent::new(&ch, data.to_owned());
        event.idempotency_key = Some(key.to_owned());
        event
    };
    let first = ok(store.append(keyed("once", "k1")).await, "append");
    let retried = ok(store.append(keyed("once", "k1")).await, "retry");
    assert_eq!(retried.id, first.id, "a retry keeps the first position");
    let other = ok(store.append(keyed("other", "k2")).await, "append k2");
    assert_eq!(other.id.offset, first.id.offset + 1);
    let read = ok(
        store.read(&ch, Position::start(first.id.epoch), 10).await,
        "read",
    );
    assert_eq!(
        read.events.len(),
        2,
        "no duplicate stored: {:?}",
        read.events
    );
    append_n(&store, &ch, backend.max_events_per_channel()).await;
    let after_trim = ok(store.append(keyed("once", "k1")).await, "append after trim");
    assert!(
        after_trim.id.offset > other.id.offset,
        "a key whose event is gone is forgotten"
    );
}

/// Concurrent appenders get unique, contiguous offsets.
pub async fn store_concurrent_appends(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_concurrent_appends") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("concurrent");
    let (tasks, per_task) = (8, 25);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = ok(backend.store().await, "store");
        let ch = ch.clone();
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..per_task {
                let event = ok(
                    store.append(NewEvent::new(&ch, format!("{t}/{i}"))).await,
                    "append",
                );
                ids.push(event.id);
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        let ids = match handle.await {
            Ok(ids) => ids,
            Err(e) => panic!("appender task failed: {e}"),
        };
        assert!(
            ids.windows(2).all(|w| w[0].offset < w[1].offset),
            "one appender's offsets must grow"
        );
        all.extend(ids);
    }
    let epochs: BTreeSet<_> = all.iter().map(|p| p.epoch).collect();
    assert_eq!(epochs.len(), 1, "all appends must share one epoch");
    let offsets: BTreeSet<_> = all.iter().map(|p| p.offset).collect();
    let expected: BTreeSet<u64> = (1..=(tasks * per_task) as u64).collect();
    assert_eq!(offsets, expected, "offsets must be unique and contiguous");
    let total = (tasks * per_task) as u64;
    let kept = total.min(backend.max_events_per_channel() as u64);
    let read = ok(
        store
            .read(&ch, Position::new(all[0].epoch, total - kept), 1000)
            .await,
        "read",
    );
    let read_offsets: Vec<u64> = read.events.iter().map(|e| e.id.offset).collect();
    let newest: Vec<u64> = (total - kept + 1..=total).collect();
    assert_eq!(read_offsets, newest, "history must be in offset order");
}

/// A closed store refuses further work with `Closed`.
pub async fn store_close(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "store_close") {
        return;
    }
    let store = ok(backend.store().await, "store");
    let ch = channel("close");
    ok(store.append(NewEvent::new(&ch, "x")).await, "append");
    ok(store.close().await, "close");
    ok(store.close().await, "second close");
    assert!(matches!(
        store.append(NewEvent::new(&ch, "y")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(store.head(&ch).await, Err(Error::Closed)));
}
