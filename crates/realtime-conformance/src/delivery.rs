//! The [`Manager`](realtime_core::Manager)'s delivery guarantees: backpressure, echoes,
//! repair, release and shutdown.

use realtime_core::{
    ChannelRequest, CloseReason, Error, GapReason, History, ManagerConfig, Message, NewEvent,
    PublishRequest, SubscribeRequest,
};

use crate::Backend;
use crate::manager::resume;
use crate::support::{
    channel, eventually, instance, next_event, next_message, ok, publish_n, runs_in,
};

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
    let published = publish_n(&manager, &ch, 10).await;
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
pub async fn manager_skip_with_gap(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.client_buffer = 4;
    config.slow_consumer = realtime_core::SlowConsumer::SkipWithGap;
    let manager = instance(backend, config).await;
    let ch = channel("drop");
    let mut client = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe",
    )
    .client;
    let published = publish_n(&manager, &ch, 10).await;
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
    if !runs_in(backend, History::Shared, "manager_echo_dedupe") {
        return;
    }
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
    if !runs_in(backend, History::Shared, "manager_live_gap_repair") {
        return;
    }
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

/// One bus subscription per channel, released with the last local client; connection counts
/// and the connection limit hold.
pub async fn manager_releases_channel(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.max_connections = 3;
    // Released with the last client, in per-instance mode too.
    config.history_linger = std::time::Duration::ZERO;
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

/// A new subscriber that asks for a backlog gets the newest events (exact, positioned),
/// then live ones with nothing repeated or missed; the manager's `backlog_on_connect`
/// applies when the request does not say; more than the replay limit is refused.
pub async fn manager_backlog_on_connect(backend: &dyn Backend) {
    let mut config = ManagerConfig::default();
    config.backlog_on_connect = 2;
    config.replay_limit = 10;
    let manager = instance(backend, config).await;
    let ch = channel("backlog");
    // A subscriber already there (with history per instance, a channel keeps history while
    // it has local subscribers).
    let _there = ok(
        manager
            .subscribe(SubscribeRequest {
                channels: vec![ChannelRequest::backlog(&ch, 0)],
                ..SubscribeRequest::default()
            })
            .await,
        "the first subscriber",
    );
    let published = publish_n(&manager, &ch, 5).await;
    let ids = |events: &[realtime_core::SharedEvent]| -> Vec<realtime_core::Position> {
        events.iter().map(|e| e.id).collect()
    };
    let asked = ok(
        manager
            .subscribe(SubscribeRequest {
                channels: vec![ChannelRequest::backlog(&ch, 3)],
                ..SubscribeRequest::default()
            })
            .await,
        "subscribe with a backlog of 3",
    );
    assert_eq!(asked.replay.len(), 1);
    assert!(asked.replay[0].gap.is_none());
    let expected: Vec<_> = published[2..].iter().map(|e| e.id).collect();
    assert_eq!(ids(&asked.replay[0].events), expected, "the 3 newest");
    let more = ok(
        manager
            .subscribe(SubscribeRequest {
                channels: vec![ChannelRequest::backlog(&ch, 9)],
                ..SubscribeRequest::default()
            })
            .await,
        "a backlog longer than the history",
    );
    let all: Vec<_> = published.iter().map(|e| e.id).collect();
    assert_eq!(ids(&more.replay[0].events), all, "all there is");
    let defaulted = ok(
        manager.subscribe(SubscribeRequest::channel(&ch)).await,
        "subscribe without saying",
    );
    let newest: Vec<_> = published[3..].iter().map(|e| e.id).collect();
    assert_eq!(
        ids(&defaulted.replay[0].events),
        newest,
        "backlog_on_connect"
    );
    let mut client = asked.client;
    let live = ok(
        manager.publish(PublishRequest::new(&ch, "live")).await,
        "publish live",
    );
    assert_eq!(
        next_event(&mut client, "after the backlog").await.id,
        live.id,
        "live continues right after the backlog"
    );
    let refused = manager
        .subscribe(SubscribeRequest {
            channels: vec![ChannelRequest::backlog(&ch, 11)],
            ..SubscribeRequest::default()
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::InvalidRequest {
                field: "backlog",
                ..
            })
        ),
        "{refused:?}"
    );
}

/// A client closed by id from another instance (logout): its stream ends with
/// `Disconnected` wherever it is connected; other clients stay; an id connected nowhere is
/// not an error.
pub async fn manager_disconnect_everywhere(backend: &dyn Backend) {
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("kick");
    let subscribe = |id: &str| SubscribeRequest {
        client_id: Some(id.to_owned()),
        ..SubscribeRequest::channel(&ch)
    };
    let mut kicked = ok(b.subscribe(subscribe("user-1")).await, "user-1 on b").client;
    let mut kept = ok(b.subscribe(subscribe("user-2")).await, "user-2 on b").client;
    ok(a.disconnect_everywhere("user-1").await, "disconnect from a");
    let ended = tokio::time::timeout(crate::support::DEADLINE, async {
        while kicked.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "user-1's stream ends");
    assert_eq!(kicked.close_reason(), Some(CloseReason::Disconnected));
    assert_eq!(kept.close_reason(), None, "user-2 stays");
    ok(
        a.publish(PublishRequest::new(&ch, "still here")).await,
        "publish",
    );
    // (With history per instance, b gives the event a position of its own.)
    assert_eq!(
        &next_event(&mut kept, "user-2").await.data[..],
        b"still here"
    );
    ok(
        a.disconnect_everywhere("nobody").await,
        "an id connected nowhere",
    );
    // A second request from the same instance arrives too (no bus may take it for a copy).
    let mut later = ok(b.subscribe(subscribe("user-3")).await, "user-3 on b").client;
    ok(a.disconnect_everywhere("user-3").await, "a second request");
    let ended = tokio::time::timeout(crate::support::DEADLINE, async {
        while later.recv().await.is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "user-3's stream ends");
}
