//! Per-instance history: two instances, each with its own in-memory store, on one bus.
//! Every event reaches every instance once; resumes are exact on the instance that issued
//! the position and an explicit gap anywhere else.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::per_instance::*;
use realtime_core::{GapReason, InMemoryBus, Position, PublishRequest, SubscribeRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_other_instance_once_and_resumes_exactly_there_only() {
    // B listens too, so its history of the channel holds A's events (under B's positions).
    let (a, b, mut client, _on_b) = two_listening_instances().await;
    for i in 0..20 {
        let via = if i % 2 == 0 { &a } else { &b };
        via.publish(PublishRequest::new("c", format!("{i}")))
            .await
            .unwrap();
    }
    let mut received = Vec::new();
    for _ in 0..20 {
        received.push(next_event(&mut client).await);
    }
    let marker = b.publish(PublishRequest::new("c", "marker")).await.unwrap();
    let last = next_event(&mut client).await;
    assert_eq!(text(&last), "marker", "no copy arrives before the marker");
    // Each instance's events in its own order, each once; positions are A's, contiguous.
    let texts: Vec<String> = received.iter().map(text).collect();
    for parity in 0..2 {
        let of_one: Vec<&String> = texts
            .iter()
            .filter(|t| t.parse::<usize>().unwrap() % 2 == parity)
            .collect();
        let expected: Vec<String> = (0..20)
            .filter(|i| i % 2 == parity)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(of_one, expected.iter().collect::<Vec<_>>());
    }
    let epoch = received[0].id.epoch;
    assert_eq!(
        received.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=20)
            .map(|o| Position::new(epoch, o))
            .collect::<Vec<_>>(),
        "delivered under A's own positions"
    );
    assert_ne!(marker.id.epoch, epoch, "B's positions are B's own");
    // Exact on A from a position A issued.
    let sub = a.subscribe(resume("c", received[9].id)).await.unwrap();
    let replayed: Vec<String> = sub.replay[0]
        .events
        .iter()
        .map(|e| text(e.event()))
        .collect();
    let mut expected: Vec<String> = texts[10..].to_vec();
    expected.push("marker".into());
    assert_eq!(replayed, expected);
    assert!(sub.replay[0].gap.is_none(), "{:?}", sub.replay[0].gap);
    // On B, A's position means nothing: an explicit gap with B's head.
    let sub = b.subscribe(resume("c", received[9].id)).await.unwrap();
    let gap = sub.replay[0]
        .gap
        .as_ref()
        .expect("a gap on the other instance");
    assert_eq!(
        (gap.reason, gap.head.epoch),
        (GapReason::EpochChanged, marker.id.epoch)
    );
    assert!(sub.replay[0].events.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_within_the_linger_resumes_exactly_and_after_it_gets_a_gap() {
    let broker = InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(1));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let mut client = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    b.publish(PublishRequest::new("c", "1")).await.unwrap();
    let seen = next_event(&mut client).await;
    drop(client);
    // A still listens: what B publishes now is recorded on A.
    b.publish(PublishRequest::new("c", "2")).await.unwrap();
    b.publish(PublishRequest::new("c", "3")).await.unwrap();
    let sub = poll_until_replay(&a, seen.id, 2).await;
    let replayed: Vec<String> = sub.replay[0]
        .events
        .iter()
        .map(|e| text(e.event()))
        .collect();
    assert_eq!(replayed, ["2", "3"]);
    let last = sub.replay[0].events[1].id;
    drop(sub);
    // The linger ends: A stops listening, and what B publishes then never reaches A's store.
    poll("the channel released after the linger", || {
        a.channel_count() == 0
    })
    .await;
    b.publish(PublishRequest::new("c", "4")).await.unwrap();
    let sub = a.subscribe(resume("c", last)).await.unwrap();
    let gap = sub.replay[0]
        .gap
        .as_ref()
        .expect("a resume across a break is a gap");
    assert_eq!(gap.reason, GapReason::EpochChanged);
    assert!(sub.replay[0].events.is_empty());
}

/// The linger slots (10,000) are for channels a client can resume: one client churning
/// through fresh channels — subscribe to 32, leave, repeat — took them all, and every other
/// channel then lost its exact resume. A channel that never gave a position takes no slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_through_fresh_channels_takes_no_linger_slot() {
    let broker = InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let mut client = a
        .subscribe(SubscribeRequest::channel("c"))
        .await
        .unwrap()
        .client;
    b.publish(PublishRequest::new("c", "1")).await.unwrap();
    let seen = next_event(&mut client).await;
    for round in 0..320 {
        let channels = (0..32)
            .map(|i| realtime_core::ChannelRequest::live(format!("churn-{round}-{i}")))
            .collect();
        let request = SubscribeRequest {
            channels,
            ..Default::default()
        };
        drop(a.subscribe(request).await.unwrap());
    }
    assert_eq!(a.channel_count(), 1, "fresh channels released at once");
    drop(client);
    assert_eq!(a.channel_count(), 1, "c lingers");
    b.publish(PublishRequest::new("c", "2")).await.unwrap();
    let sub = poll_until_replay(&a, seen.id, 1).await;
    assert!(sub.replay[0].gap.is_none(), "{:?}", sub.replay[0].gap);
    assert_eq!(text(sub.replay[0].events[0].event()), "2");
}

/// The linger slots are shared: a tenant churning through channels that have history
/// (join, an event arrives, leave; repeat) kept every slot, and a quieter tenant's channel
/// lost its exact resume. Full, the pool takes a slot from the tenant holding the most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_churning_through_channels_ends_its_own_lingers_not_another_tenants() {
    let broker = InMemoryBus::new();
    let mut config = realtime_core::ManagerConfig::default();
    config.history = realtime_core::History::PerInstance;
    config.max_lingering_channels = 8;
    let a = realtime_core::Manager::builder()
        .config(config)
        .store(Arc::new(realtime_core::InMemoryStore::new()))
        .bus(Arc::new(broker.connect()))
        .build()
        .unwrap();
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let on = |tenant: &str, channel: &str| SubscribeRequest {
        channels: vec![realtime_core::ChannelRequest::live(channel)],
        tenant: Some(tenant.into()),
        ..Default::default()
    };
    // A channel of `tenant` on A that has handed out a position, then left: it lingers.
    let visit = async |tenant: &str, channel: &str| {
        let mut client = a.subscribe(on(tenant, channel)).await.unwrap().client;
        b.publish(PublishRequest::new(channel, "1").tenant(tenant))
            .await
            .unwrap();
        next_event(&mut client).await
    };
    // The churning tenant takes every slot first.
    for i in 0..8 {
        visit("churn", &format!("c{i}")).await;
    }
    let seen = visit("quiet", "c").await;
    for i in 8..100 {
        visit("churn", &format!("c{i}")).await;
    }
    poll("at most the pool's channels linger", || {
        a.channel_count() <= 8
    })
    .await;
    // The quiet tenant's channel still listens: what B publishes now is recorded on A.
    b.publish(PublishRequest::new("c", "2").tenant("quiet"))
        .await
        .unwrap();
    let request = SubscribeRequest {
        channels: vec![realtime_core::ChannelRequest::resume(
            "c",
            seen.id.to_token(),
        )],
        tenant: Some("quiet".into()),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let sub = a.subscribe(request.clone()).await.unwrap();
        let replay = &sub.replay[0];
        assert!(replay.gap.is_none(), "exact resume: {:?}", replay.gap);
        if replay.events.len() == 1 {
            assert_eq!(text(replay.events[0].event()), "2");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the event recorded");
        drop(sub);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A resume from `0-0` (the head of a `lost` gap) on a channel this instance does not listen
/// to: what was published meanwhile never reached its history, so the answer is a gap — an
/// empty "exact" replay skipped it without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_the_start_on_a_channel_not_listened_to_is_a_gap() {
    let broker = InMemoryBus::new();
    let a = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    let b = per_instance(Arc::new(broker.connect()), Duration::from_secs(60));
    b.publish(PublishRequest::new("c", "while a did not listen"))
        .await
        .unwrap();
    let sub = a
        .subscribe(resume("c", Position::start(realtime_core::Epoch::NONE)))
        .await
        .unwrap();
    let gap = sub.replay[0].gap.as_ref().map(|g| g.reason);
    assert_eq!(gap, Some(GapReason::EpochChanged));
    // While it listens, a resume from the start is exact again.
    let _listening = sub;
    let again = a
        .subscribe(resume("c", Position::start(realtime_core::Epoch::NONE)))
        .await
        .unwrap();
    assert!(again.replay[0].gap.is_none());
}

/// Two instances both publishing to a channel both listen to: each records the other's
/// events, and that must not read as a hole in the other's sequence. (Numbered by the store,
/// the bus copies skipped the offsets of re-recorded events, and every interleaving turned
/// into a `lost` gap once the hole had been awaited.)
#[tokio::test(start_paused = true)]
async fn two_publishers_on_a_channel_open_no_hole() {
    let (a, b, mut on_a, mut on_b) = two_listening_instances().await;
    for i in 0..20 {
        let via = if i % 2 == 0 { &a } else { &b };
        via.publish(PublishRequest::new("c", format!("{i}")))
            .await
            .unwrap();
        // Each instance records the event before the next is published, so their stores
        // interleave both instances' events.
        for client in [&mut on_a, &mut on_b] {
            assert_eq!(text(&next_event(client).await), i.to_string());
        }
    }
    // Past the patience for holes (the clock is paused: this advances it, nothing waits).
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.publish(PublishRequest::new("c", "marker")).await.unwrap();
    for client in [&mut on_a, &mut on_b] {
        assert_eq!(
            text(&next_event(client).await),
            "marker",
            "no gap before it"
        );
    }
}
