//! The [`Manager`](realtime_core::Manager)'s guarantees on top of a backend.

use std::sync::Arc;

use realtime_core::{
    ChannelRequest, Error, GapReason, History, ManagerConfig, Position, PublishRequest,
    SubscribeRequest,
};
use tokio::sync::Mutex;

use crate::Backend;
use crate::support::{channel, instance, next_event, ok, publish_n, runs_in};

pub(crate) fn resume(ch: &str, position: Position) -> SubscribeRequest {
    SubscribeRequest {
        channels: vec![ChannelRequest::resume(ch, position.to_token())],
        ..Default::default()
    }
}

/// Clients that subscribe while events are being published (on another instance) get every
/// event after their resume position once, in order: replay then live, no loss, no duplicate.
pub async fn manager_subscribe_race(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "manager_subscribe_race") {
        return;
    }
    let publisher = instance(backend, ManagerConfig::default()).await;
    let ch = channel("race");
    // First, deterministically: three events land after the client is registered for live
    // events and before its history is read, so they reach it both ways.
    let mut early = Vec::new();
    for i in 0..2 {
        early.push(
            ok(
                publisher
                    .publish(PublishRequest::new(&ch, format!("early{i}")))
                    .await,
                "publish",
            )
            .id,
        );
    }
    let hook = {
        let (publisher, ch) = (publisher.clone(), ch.clone());
        Box::pin(async move {
            for i in 0..3 {
                ok(
                    publisher
                        .publish(PublishRequest::new(&ch, format!("window{i}")))
                        .await,
                    "publish",
                );
            }
        })
    };
    let store = std::sync::Arc::new(crate::support::BeforeFirstRead::new(
        ok(backend.store().await, "store"),
        hook,
    ));
    let bus = ok(backend.bus().await, "bus");
    let windowed = ok(
        realtime_core::Manager::builder()
            .store(store)
            .bus(bus)
            .build(),
        "manager",
    );
    let from = early[0];
    let sub = ok(windowed.subscribe(resume(&ch, from)).await, "subscribe");
    let mut client = sub.client;
    let mut offsets: Vec<u64> = sub.replay[0].events.iter().map(|e| e.id.offset).collect();
    let marker = ok(
        publisher.publish(PublishRequest::new(&ch, "marker")).await,
        "marker",
    );
    while offsets.last() != Some(&marker.id.offset) {
        offsets.push(next_event(&mut client, "window client").await.id.offset);
    }
    let expected: Vec<u64> = (from.offset + 1..=marker.id.offset).collect();
    assert_eq!(
        offsets, expected,
        "events published between registration and history read: once each"
    );

    // Then under load: a producer runs while clients keep subscribing.
    let subscriber = instance(backend, ManagerConfig::default()).await;
    let ch = channel("race");
    let total = 200u64;
    let published = Arc::new(Mutex::new(Vec::new()));
    let first = ok(
        publisher.publish(PublishRequest::new(&ch, "0")).await,
        "publish",
    );
    published.lock().await.push(first.id);
    let producer = {
        let (publisher, ch, published) = (publisher.clone(), ch.clone(), published.clone());
        tokio::spawn(async move {
            for i in 1..total {
                let event = ok(
                    publisher
                        .publish(PublishRequest::new(&ch, i.to_string()))
                        .await,
                    "publish",
                );
                published.lock().await.push(event.id);
                if i % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut clients = Vec::new();
    for k in 0..8usize {
        // Resume from whatever was published most recently: the race is the point.
        let from = {
            let ids = published.lock().await;
            ids[(ids.len() * k / 8).min(ids.len() - 1)]
        };
        let sub = ok(subscriber.subscribe(resume(&ch, from)).await, "subscribe");
        clients.push((from, sub));
        tokio::task::yield_now().await;
    }
    if let Err(e) = producer.await {
        panic!("producer failed: {e}");
    }
    let last = *published.lock().await.last().unwrap_or(&first.id);
    let retained = backend.max_events_per_channel() as u64;
    for (from, sub) in clients {
        let mut client = sub.client;
        assert_eq!(sub.replay.len(), 1);
        // The producer may outrun the store's window; then (and only then) a `trimmed` gap is
        // the honest answer, and delivery continues exactly after its head.
        let start = match &sub.replay[0].gap {
            None => from.offset,
            Some(gap) => {
                assert_eq!(
                    gap.reason,
                    GapReason::Trimmed,
                    "resume from {from}: {gap:?}"
                );
                assert!(
                    gap.head.offset > from.offset + retained,
                    "resume from {from} is inside the retained window but got {gap:?}"
                );
                gap.head.offset
            }
        };
        let mut offsets: Vec<u64> = sub.replay[0].events.iter().map(|e| e.id.offset).collect();
        while offsets.last().copied().unwrap_or(start) < last.offset {
            offsets.push(next_event(&mut client, "race client").await.id.offset);
        }
        let expected: Vec<u64> = (start + 1..=last.offset).collect();
        assert_eq!(
            offsets, expected,
            "client resuming from {from}: replay + live must be exact"
        );
    }
}

/// Resume positions that cannot be replayed exactly give a gap with the head, never a
/// partial replay; live delivery then continues after the head.
pub async fn manager_resume_gaps(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.replay_limit = 5;
    let manager = instance(backend, config).await;
    let ch = channel("gaps");
    // A client keeps the instance listening (per-instance history is kept while it does).
    let _listener = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "listen",
    );
    let events = publish_n(&manager, &ch, 10).await;
    let head = events[9].id;
    let epoch = head.epoch;
    let cases: Vec<(&str, String, GapReason)> = vec![
        (
            "beyond the limit",
            events[0].id.to_token(),
            GapReason::Limit,
        ),
        (
            "malformed",
            "not-a-position".into(),
            GapReason::UnknownPosition,
        ),
        (
            "Go-style id",
            "1712345678901-3".into(),
            GapReason::EpochChanged,
        ),
        (
            "beyond the head",
            Position::new(epoch, 99).to_token(),
            GapReason::UnknownPosition,
        ),
        (
            "other epoch",
            Position::new(realtime_core::Epoch(epoch.0 ^ 1), 2).to_token(),
            GapReason::EpochChanged,
        ),
    ];
    for (what, token, reason) in cases {
        let request = SubscribeRequest {
            channels: vec![ChannelRequest::resume(&ch, token)],
            ..Default::default()
        };
        let sub = ok(manager.subscribe(request).await, what);
        let replay = &sub.replay[0];
        let gap = replay
            .gap
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: expected a gap, replay {:?}", replay.events));
        assert_eq!(
            (gap.reason, gap.head, &*gap.channel),
            (reason, head, ch.as_str()),
            "{what}"
        );
        assert!(replay.events.is_empty(), "{what}: no partial replay");
    }
    let within = ok(
        manager.subscribe(resume(&ch, events[4].id)).await,
        "within limit",
    );
    assert!(
        within.replay[0].gap.is_none(),
        "exactly the limit must replay"
    );
    assert_eq!(within.replay[0].events.len(), 5);
    // After a gap, live events continue right after the head.
    let mut gapped = ok(manager.subscribe(resume(&ch, events[0].id)).await, "gapped").client;
    let next = ok(
        manager.publish(PublishRequest::new(&ch, "after")).await,
        "publish after",
    );
    assert_eq!(next_event(&mut gapped, "after gap").await.id, next.id);
    // Lost history: the resume gets epoch_changed with the new head.
    ok(backend.lose_history(&ch).await, "lose history");
    let fresh = ok(
        manager.publish(PublishRequest::new(&ch, "fresh")).await,
        "publish fresh",
    );
    let sub = ok(
        manager.subscribe(resume(&ch, events[8].id)).await,
        "after loss",
    );
    let gap = sub.replay[0].gap.as_ref().map(|g| (g.reason, g.head));
    assert_eq!(gap, Some((GapReason::EpochChanged, fresh.id)));
    // Trimmed history.
    let ch2 = channel("gaps-trim");
    let _listener2 = ok(
        manager.subscribe(SubscribeRequest::channel(&ch2)).await,
        "listen",
    );
    let mut first = None;
    for i in 0..backend.max_events_per_channel() + 3 {
        let e = ok(
            manager
                .publish(PublishRequest::new(&ch2, format!("{i}")))
                .await,
            "publish",
        );
        first.get_or_insert(e.id);
    }
    let first = first.unwrap_or(Position::start(epoch));
    let sub = ok(manager.subscribe(resume(&ch2, first)).await, "trimmed");
    assert_eq!(
        sub.replay[0].gap.as_ref().map(|g| g.reason),
        Some(GapReason::Trimmed)
    );
}

/// One client on several channels: each channel's replay, and live events from all of them.
pub async fn manager_multi_channel(backend: &dyn Backend) {
    let manager = instance(backend, ManagerConfig::default()).await;
    let (c1, c2) = (channel("multi1"), channel("multi2"));
    let _listener = ok(
        manager.subscribe(SubscribeRequest::channel(&c1)).await,
        "listen",
    );
    let old1 = ok(
        manager.publish(PublishRequest::new(&c1, "old1")).await,
        "publish",
    );
    let old2 = ok(
        manager.publish(PublishRequest::new(&c1, "old2")).await,
        "publish",
    );
    let request = SubscribeRequest {
        channels: vec![
            ChannelRequest::resume(&c1, old1.id.to_token()),
            ChannelRequest::live(&c2),
        ],
        ..Default::default()
    };
    let sub = ok(manager.subscribe(request).await, "subscribe");
    assert_eq!(
        sub.replay.len(),
        1,
        "only the resuming channel has a replay"
    );
    assert_eq!(
        sub.replay[0]
            .events
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![old2.id]
    );
    let mut client = sub.client;
    assert_eq!(
        client.channels().collect::<Vec<_>>(),
        vec![c1.as_str(), c2.as_str()]
    );
    let n1 = ok(
        manager.publish(PublishRequest::new(&c2, "n1")).await,
        "publish",
    );
    let n2 = ok(
        manager.publish(PublishRequest::new(&c1, "n2")).await,
        "publish",
    );
    let got = [
        next_event(&mut client, "multi").await,
        next_event(&mut client, "multi").await,
    ];
    assert_eq!((got[0].id, &got[0].channel), (n1.id, &c2));
    assert_eq!((got[1].id, &got[1].channel), (n2.id, &c1));
    let dup = SubscribeRequest {
        channels: vec![ChannelRequest::live(&c1), ChannelRequest::live(&c1)],
        ..Default::default()
    };
    assert!(matches!(
        manager.subscribe(dup).await,
        Err(Error::InvalidRequest { .. })
    ));
}

/// A running client joins channels (with an exact replay) and leaves them (no more delivery).
pub async fn manager_join_and_leave(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "manager_join_and_leave") {
        return;
    }
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let (c1, c2) = (channel("join1"), channel("join2"));
    let mut client = ok(
        a.subscribe(SubscribeRequest::default()).await,
        "subscribe to nothing",
    )
    .client;
    let old = publish_n(&b, &c1, 3).await;
    let replay = ok(
        client
            .join(vec![ChannelRequest::resume(&c1, old[0].id.to_token())])
            .await,
        "join",
    );
    let replayed: Vec<_> = replay[0].events.iter().map(|e| e.id).collect();
    assert_eq!(replayed, vec![old[1].id, old[2].id], "join replays exactly");
    ok(
        client.join(vec![ChannelRequest::live(&c2)]).await,
        "join live",
    );
    assert!(matches!(
        client.join(vec![ChannelRequest::live(&c2)]).await,
        Err(Error::InvalidRequest { .. })
    ));
    let live = ok(b.publish(PublishRequest::new(&c1, "live")).await, "publish");
    assert_eq!(next_event(&mut client, "joined channel").await.id, live.id);
    assert!(client.leave(&c1));
    assert!(!client.leave(&c1), "leaving twice");
    ok(
        b.publish(PublishRequest::new(&c1, "after leave")).await,
        "publish",
    );
    let marker = ok(
        b.publish(PublishRequest::new(&c2, "marker")).await,
        "marker",
    );
    let next = next_event(&mut client, "after leave").await;
    assert_eq!(
        (next.id, next.channel.as_str()),
        (marker.id, c2.as_str()),
        "nothing from the channel left"
    );
    assert_eq!(
        a.channel_count(),
        1,
        "leaving releases the channel's bus subscription"
    );
}
