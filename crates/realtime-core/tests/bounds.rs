//! What one client may hold: it is cut by lag, not only by a full queue, and a resume is
//! bounded in bytes as well as in events.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use realtime_core::{CloseReason, Manager, ManagerConfig, PublishRequest, SubscribeRequest};

#[tokio::test(start_paused = true)]
async fn a_client_far_behind_live_is_cut_before_its_queue_fills() {
    let mut config = ManagerConfig::default();
    config.client_buffer = 1_000;
    config.max_lag = Duration::from_secs(5);
    let manager = Manager::builder().config(config).build().unwrap();
    let subscribe = || manager.subscribe(SubscribeRequest::channel("c"));
    let mut reader = subscribe().await.unwrap().client;
    let idle = subscribe().await.unwrap().client;
    for _ in 0..3 {
        manager
            .publish(PublishRequest::new("c", "x"))
            .await
            .unwrap();
        while reader.try_recv().is_some() {}
        tokio::time::advance(Duration::from_secs(4)).await;
    }
    assert_eq!(
        reader.close_reason(),
        None,
        "a client that reads has no lag"
    );
    assert_eq!(
        idle.close_reason(),
        Some(CloseReason::SlowConsumer),
        "3 events queued, the oldest 8 s old: behind by more than 5 s"
    );
}

#[tokio::test]
async fn a_replay_over_the_byte_budget_is_a_limit_gap_not_a_partial_replay() {
    let mut config = ManagerConfig::default();
    config.replay_max_bytes = 10_000;
    let manager = Manager::builder().config(config).build().unwrap();
    let first = manager
        .publish(PublishRequest::new("c", "start"))
        .await
        .unwrap();
    for _ in 0..5 {
        manager
            .publish(PublishRequest::new("c", "x".repeat(4_000)))
            .await
            .unwrap();
    }
    let request = SubscribeRequest {
        channels: vec![realtime_core::ChannelRequest::resume(
            "c",
            first.id.to_token(),
        )],
        ..Default::default()
    };
    let sub = manager.subscribe(request).await.unwrap();
    let replay = &sub.replay[0];
    assert!(replay.events.is_empty(), "no partial replay");
    assert_eq!(
        replay.gap.as_ref().map(|g| g.reason),
        Some(realtime_core::GapReason::Limit)
    );
}

#[tokio::test]
async fn one_subscribe_resuming_many_channels_holds_one_replay_budget() {
    let mut config = ManagerConfig::default();
    config.replay_max_bytes = 10_000;
    let manager = Manager::builder().config(config).build().unwrap();
    let mut channels = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let first = manager
            .publish(PublishRequest::new(name, "start"))
            .await
            .unwrap();
        for _ in 0..2 {
            manager
                .publish(PublishRequest::new(name, "x".repeat(4_000)))
                .await
                .unwrap();
        }
        // Each channel's replay (8,000 bytes) fits the budget on its own.
        channels.push(realtime_core::ChannelRequest::resume(
            name,
            first.id.to_token(),
        ));
    }
    let sub = manager
        .subscribe(SubscribeRequest {
            channels,
            ..Default::default()
        })
        .await
        .unwrap();
    let held: usize = sub
        .replay
        .iter()
        .flat_map(|r| &r.events)
        .map(|e| e.data.len())
        .sum();
    assert_eq!(held, 8_000, "the four replays together hold one budget");
    assert!(sub.replay[0].gap.is_none());
    for replay in &sub.replay[1..] {
        assert!(replay.events.is_empty(), "no partial replay");
        assert_eq!(
            replay.gap.as_ref().map(|g| g.reason),
            Some(realtime_core::GapReason::Limit),
            "{}",
            replay.channel
        );
    }
}
