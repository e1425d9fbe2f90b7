//! The [`Manager`](realtime_core::Manager)'s guarantees on top of a backend.

use std::sync::Arc;

use realtime_core::{
    ChannelRequest, CloseReason, Error, GapReason, ManagerConfig, Message, NewEvent, Position,
    PublishRequest, SubscribeRequest,
};
use tokio::sync::Mutex;

use crate::Backend;
use crate::support::{channel, eventually, instance, next_event, next_message, ok, text};

fn resume(ch: &str, position: Position) -> SubscribeRequest {
    SubscribeRequest {
        channels: vec![ChannelRequest::resume(ch, position.to_token())],
        ..Default::default()
    }
}

/// Clients that subscribe while events are being published (on another instance) get every
/// event after their resume position once, in order: replay then live, no loss, no duplicate.
pub async fn manager_subscribe_race(backend: &dyn Backend) {
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
    for (from, sub) in clients {
        let mut client = sub.client;
        assert_eq!(sub.replay.len(), 1);
        assert!(
            sub.replay[0].gap.is_none(),
            "replay from {from} must be exact: {:?}",
            sub.replay[0].gap
        );
        let mut offsets: Vec<u64> = sub.replay[0].events.iter().map(|e| e.id.offset).collect();
        while offsets.last().copied().unwrap_or(from.offset) < last.offset {
            offsets.push(next_event(&mut client, "race client").await.id.offset);
        }
        let expected: Vec<u64> = (from.offset + 1..=last.offset).collect();
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
    let mut events = Vec::new();
    for i in 0..10 {
        events.push(ok(
            manager
                .publish(PublishRequest::new(&ch, format!("{i}")))
                .await,
            "publish",
        ));
    }
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

/// Tenants are strict and subjects address clients; it holds across instances.
pub async fn manager_tenant_isolation(backend: &dyn Backend) {
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("tenants");
    let who = |tenant: Option<&str>, subject: Option<&str>| SubscribeRequest {
        channels: vec![ChannelRequest::live(&ch)],
        tenant: tenant.map(Into::into),
        subject: subject.map(Into::into),
        ..Default::default()
    };
    let mut clients = vec![
        (
            "anonymous",
            ok(a.subscribe(who(None, None)).await, "sub").client,
            vec!["all", "end"],
        ),
        (
            "tenant t1",
            ok(a.subscribe(who(Some("t1"), None)).await, "sub").client,
            vec!["t1", "all", "end"],
        ),
        (
            "t1/alice",
            ok(a.subscribe(who(Some("t1"), Some("alice"))).await, "sub").client,
            vec!["t1", "t1-alice", "all", "end"],
        ),
        (
            "tenant t2",
            ok(a.subscribe(who(Some("t2"), None)).await, "sub").client,
            vec!["t2", "all", "end"],
        ),
    ];
    let sends: [(&str, Option<&str>, Option<&str>); 6] = [
        ("t1", Some("t1"), None),
        ("t2", Some("t2"), None),
        ("t1-alice", Some("t1"), Some("alice")),
        ("t1-bob", Some("t1"), Some("bob")),
        ("all", None, None),
        ("end", None, None),
    ];
    for (data, tenant, subject) in sends {
        let mut request = PublishRequest::new(&ch, data);
        request.tenant = tenant.map(Into::into);
        request.subject = subject.map(Into::into);
        // Published on the other instance: routing must hold for bus-delivered events.
        ok(b.publish(request).await, "publish");
    }
    for (name, client, expected) in &mut clients {
        let mut got = Vec::new();
        while got.last().map(String::as_str) != Some("end") {
            got.push(text(&next_event(client, name).await).to_owned());
        }
        assert_eq!(&got, expected, "{name} received the wrong events");
    }
}

/// A client that does not read is closed as a slow consumer; resuming replays what it missed.
pub async fn manager_slow_consumer(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.client_buffer = 4;
    let manager = instance(backend, config).await;
    let ch = channel("slow");
    let mut client = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe",
    )
    .client;
    let mut published = Vec::new();
    for i in 0..10 {
        published.push(ok(
            manager
                .publish(PublishRequest::new(&ch, format!("{i}")))
                .await,
            "publish",
        ));
    }
    let mut received = Vec::new();
    while let Some(message) = client.recv().await {
        match message {
            Message::Event(e) => received.push(e.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(client.close_reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(
        received,
        published[..4].iter().map(|e| e.id).collect::<Vec<_>>()
    );
    let resumed = ok(manager.subscribe(resume(&ch, received[3])).await, "resume");
    let replayed: Vec<_> = resumed.replay[0].events.iter().map(|e| e.id).collect();
    assert_eq!(
        replayed,
        published[4..].iter().map(|e| e.id).collect::<Vec<_>>(),
        "resume must replay the rest"
    );
}

/// In drop mode a full client loses events but is told with a `dropped` gap.
pub async fn manager_drop_on_backpressure(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.client_buffer = 4;
    config.drop_on_backpressure = true;
    let manager = instance(backend, config).await;
    let ch = channel("drop");
    let mut client = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe",
    )
    .client;
    let mut published = Vec::new();
    for i in 0..10 {
        published.push(ok(
            manager
                .publish(PublishRequest::new(&ch, format!("{i}")))
                .await,
            "publish",
        ));
    }
    for expected in &published[..4] {
        assert_eq!(next_event(&mut client, "queued").await.id, expected.id);
    }
    let after = ok(
        manager.publish(PublishRequest::new(&ch, "after")).await,
        "publish after",
    );
    match next_message(&mut client, "gap").await {
        Message::Gap(gap) => assert_eq!(
            (gap.reason, gap.head),
            (GapReason::Dropped, published[9].id)
        ),
        other => panic!("expected a dropped gap, got {other:?}"),
    }
    assert_eq!(next_event(&mut client, "after gap").await.id, after.id);
    assert_eq!(client.close_reason(), None);
}

/// Events published on this instance are not delivered again when the bus echoes them, and
/// events from another instance arrive once.
pub async fn manager_echo_dedupe(backend: &dyn Backend) {
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("echo");
    let mut client = ok(
        a.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe",
    )
    .client;
    let mut published = Vec::new();
    for i in 0..10 {
        let via = if i % 2 == 0 { &a } else { &b };
        published.push(
            ok(
                via.publish(PublishRequest::new(&ch, format!("{i}"))).await,
                "publish",
            )
            .id,
        );
    }
    let mut received = Vec::new();
    for _ in 0..10 {
        received.push(next_event(&mut client, "echo client").await.id);
    }
    assert_eq!(received, published, "each event once, in order");
    // Anything late (an echo) would arrive before this marker.
    let marker = ok(
        b.publish(PublishRequest::new(&ch, "marker")).await,
        "marker",
    );
    assert_eq!(
        next_event(&mut client, "marker").await.id,
        marker.id,
        "no duplicate before the marker"
    );
}

/// An event that never reached the bus (appended straight to the store) is repaired from the
/// store as soon as a later event shows the hole.
pub async fn manager_live_gap_repair(backend: &dyn Backend) {
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let store = ok(backend.store().await, "store");
    let ch = channel("repair");
    let mut client = ok(
        a.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe",
    )
    .client;
    let lost1 = ok(store.append(NewEvent::new(&ch, "lost1")).await, "append");
    let lost2 = ok(store.append(NewEvent::new(&ch, "lost2")).await, "append");
    let seen = ok(b.publish(PublishRequest::new(&ch, "seen")).await, "publish");
    for expected in [&lost1, &lost2, &seen] {
        assert_eq!(
            next_event(&mut client, "repair").await.id,
            expected.id,
            "the hole must be filled in order"
        );
    }
}

/// One client on several channels: each channel's replay, and live events from all of them.
pub async fn manager_multi_channel(backend: &dyn Backend) {
    let manager = instance(backend, ManagerConfig::default()).await;
    let (c1, c2) = (channel("multi1"), channel("multi2"));
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

/// One bus subscription per channel, released with the last local client; connection counts
/// and the connection limit hold.
pub async fn manager_releases_channel(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.max_connections = 3;
    let manager = instance(backend, config).await;
    let ch = channel("release");
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(
            ok(
                manager.subscribe(SubscribeRequest::channel(&ch)).await,
                "subscribe",
            )
            .client,
        );
    }
    assert_eq!(
        manager.channel_count(),
        1,
        "one bus subscription for three clients"
    );
    assert_eq!(manager.connection_count(), 3);
    match manager.subscribe(SubscribeRequest::channel(&ch)).await {
        Err(e @ Error::TooManyConnections { limit: 3 }) => assert!(e.is_retryable()),
        other => panic!(
            "expected TooManyConnections, got {:?}",
            other.map(|s| s.client)
        ),
    }
    let id = clients[0].id().to_owned();
    ok(manager.disconnect(&id), "disconnect");
    assert!(clients[0].recv().await.is_none());
    assert_eq!(clients[0].close_reason(), Some(CloseReason::Disconnected));
    assert!(matches!(
        manager.disconnect("nobody"),
        Err(Error::UnknownClient(_))
    ));
    clients.clear();
    assert_eq!(manager.connection_count(), 0);
    assert_eq!(
        manager.channel_count(),
        0,
        "the last client leaving releases the channel"
    );
    // A new client works on a fresh subscription and sees only new events.
    let mut again = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "resubscribe",
    )
    .client;
    let event = ok(
        manager.publish(PublishRequest::new(&ch, "again")).await,
        "publish",
    );
    assert_eq!(next_event(&mut again, "resubscribed").await.id, event.id);
    drop(again);
    eventually("connection count back to zero", || {
        manager.connection_count() == 0
    })
    .await;
}

/// Closing the manager ends every client with `Shutdown` and refuses further work.
pub async fn manager_close(backend: &dyn Backend) {
    let manager = instance(backend, ManagerConfig::default()).await;
    let ch = channel("mclose");
    let mut client = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe",
    )
    .client;
    ok(manager.close().await, "close");
    let ended = tokio::time::timeout(crate::support::DEADLINE, client.recv()).await;
    assert!(matches!(ended, Ok(None)), "client must end on close");
    assert_eq!(client.close_reason(), Some(CloseReason::Shutdown));
    assert!(matches!(
        manager.publish(PublishRequest::new(&ch, "x")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        Err(Error::Closed)
    ));
    assert_eq!(manager.channel_count(), 0);
    drop(client);
    assert_eq!(manager.connection_count(), 0);
}
