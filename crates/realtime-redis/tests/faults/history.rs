//! Redis coming back with older or partial data, and what subscribers must not create.

use super::*;

/// Redis comes back from an older snapshot: the offsets after it were handed out already,
/// so the next append must start a new epoch, and a client holding an id from the lost part
/// must get a gap — never new events under its old ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_restore_from_an_older_snapshot_never_reuses_an_id() {
    let mut server = OwnRedis::start(Persistence::Snapshot);
    let (a, b) = (instance(&server.url()).await, instance(&server.url()).await);
    let mut subscribers = Subscribers::join(&b, 2).await;
    publish(&a, &mut subscribers, 10).await;
    server.snapshot();
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("before the restore").await;
    let last_seen = a.manager.store().head(CHANNEL).await.unwrap();
    assert_eq!(last_seen.offset, 20);
    outage(&mut server, &a, &b, Duration::from_secs(1)).await;
    let restored = a.manager.store().head(CHANNEL).await.unwrap();
    assert_eq!(restored, realtime_core::Position::new(last_seen.epoch, 10));
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("after the restore").await;
    let counts = subscribers.verdict("redis restored from an older snapshot");
    assert!(counts.gaps >= 1, "{counts}");
    let now = a.manager.store().head(CHANNEL).await.unwrap();
    assert_ne!(now.epoch, last_seen.epoch, "new events carry a new epoch");
    // A client that saw offset 20 of the lost history resumes: a gap, not a silent skip.
    let resumed = b
        .manager
        .subscribe(realtime_core::SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(
                CHANNEL,
                last_seen.to_token(),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    let gap = resumed.replay[0].gap.as_ref().expect("a gap");
    assert_eq!(gap.reason, realtime_core::GapReason::EpochChanged);
    assert_eq!(gap.head, now);
}

/// Eviction takes a channel's meta hash but leaves its stream: resumes get a gap (never the
/// old events under a new epoch), and publishing goes on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_an_evicted_meta_hash_starts_a_new_history() {
    let server = OwnRedis::start(Persistence::None);
    let a = instance(&server.url()).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let event = a
            .manager
            .publish(PublishRequest::new(CHANNEL, format!("old {i}")))
            .await
            .unwrap();
        ids.push(event.id);
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let meta = "realtime:{orders}:m";
    let removed: u64 = redis::cmd("DEL")
        .arg(meta)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let resumed = a
        .manager
        .subscribe(realtime_core::SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(
                CHANNEL,
                ids[1].to_token(),
            )],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(resumed.replay[0].events.is_empty(), "no old events");
    assert_eq!(
        resumed.replay[0].gap.as_ref().map(|g| g.reason),
        Some(realtime_core::GapReason::EpochChanged)
    );
    let next = a
        .manager
        .publish(PublishRequest::new(CHANNEL, "new"))
        .await
        .expect("publishing goes on after the eviction");
    assert_eq!(next.id.offset, 1);
    assert_ne!(next.id.epoch, ids[0].epoch);
    let read = a
        .manager
        .store()
        .read(CHANNEL, realtime_core::Position::start(next.id.epoch), 100)
        .await
        .unwrap();
    assert_eq!(read.events.len(), 1, "only the new history: {read:?}");
}

/// Subscribers alone create nothing in Redis: no keys for a channel nobody published to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_subscribing_creates_no_keys() {
    let server = OwnRedis::start(Persistence::None);
    let a = instance(&server.url()).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let request = realtime_core::SubscribeRequest {
            channels: vec![realtime_core::ChannelRequest::resume(
                format!("quiet-{i}"),
                "abc-3",
            )],
            ..Default::default()
        };
        clients.push(a.manager.subscribe(request).await.unwrap());
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut admin).await.unwrap();
    assert_eq!(keys, 0, "subscribing and resuming wrote keys");
    // A subscriber of a channel without history receives its first event.
    let first = a
        .manager
        .publish(PublishRequest::new("quiet-0", "first"))
        .await
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, clients[0].client.recv()).await {
            Ok(Some(realtime_core::Message::Event(event))) => {
                assert_eq!(event.id, first.id);
                break;
            }
            Ok(Some(_)) => continue,
            other => panic!("expected the first event, got {other:?}"),
        }
    }
}
