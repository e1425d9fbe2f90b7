//! A client is cut by lag, not only by a full queue.

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
