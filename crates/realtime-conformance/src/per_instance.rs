//! The functions of [`History::PerInstance`] mode: each instance keeps its history in its
//! own in-memory store and the backend carries only the bus.

use realtime_core::{
    Epoch, GapReason, History, ManagerConfig, Position, PublishRequest, SubscribeRequest,
};

use crate::Backend;
use crate::manager::resume;
use crate::support::{channel, eventually, instance, next_event, ok, runs_in, text};

/// Per-instance history: every event reaches the other instance once, each instance's events
/// in their order, under the receiving instance's own positions; a resume is exact on the
/// instance that issued the position and an `epoch_changed` gap on another.
pub async fn history_per_instance_fanout(backend: &dyn Backend) {
    if !runs_in(backend, History::PerInstance, "history_per_instance_fanout") {
        return;
    }
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("per-instance");
    let mut client = ok(a.subscribe(SubscribeRequest::channel(&ch)).await, "sub a").client;
    let _on_b = ok(b.subscribe(SubscribeRequest::channel(&ch)).await, "sub b");
    for i in 0..20 {
        let via = if i % 2 == 0 { &a } else { &b };
        ok(
            via.publish(PublishRequest::new(&ch, format!("{i}"))).await,
            "publish",
        );
    }
    let mut received = Vec::new();
    for _ in 0..20 {
        received.push(next_event(&mut client, "fan-out").await);
    }
    let marker = ok(
        b.publish(PublishRequest::new(&ch, "marker")).await,
        "marker",
    );
    let last = next_event(&mut client, "marker").await;
    assert_eq!(text(&last), "marker", "no copy arrives before the marker");
    for parity in 0..2 {
        let of_one: Vec<String> = received
            .iter()
            .map(|e| text(e).to_owned())
            .filter(|t| t.parse::<usize>().is_ok_and(|n| n % 2 == parity))
            .collect();
        let expected: Vec<String> = (0..20)
            .filter(|i| i % 2 == parity)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            of_one, expected,
            "each instance's events once, in its order"
        );
    }
    let epoch = received[0].id.epoch;
    assert_eq!(
        received.iter().map(|e| e.id).collect::<Vec<_>>(),
        (1..=20)
            .map(|o| Position::new(epoch, o))
            .collect::<Vec<_>>(),
        "delivered under the receiving instance's positions"
    );
    let sub = ok(a.subscribe(resume(&ch, received[9].id)).await, "resume a");
    let replayed: Vec<&str> = sub.replay[0].events.iter().map(|e| text(e)).collect();
    let mut expected: Vec<&str> = received[10..].iter().map(text).collect();
    expected.push("marker");
    assert_eq!((sub.replay[0].gap.as_ref(), replayed), (None, expected));
    let sub = ok(b.subscribe(resume(&ch, received[9].id)).await, "resume b");
    let gap = sub.replay[0].gap.as_ref().map(|g| (g.reason, g.head.epoch));
    assert_eq!(gap, Some((GapReason::EpochChanged, marker.id.epoch)));
}

/// Per-instance history: a client back within the linger resumes exactly (the instance kept
/// listening); after it, the instance stopped listening and the resume is a gap.
pub async fn history_per_instance_linger(backend: &dyn Backend) {
    if !runs_in(backend, History::PerInstance, "history_per_instance_linger") {
        return;
    }
    let mut config = ManagerConfig::default();
    config.history_linger = std::time::Duration::from_secs(1);
    let a = instance(backend, config).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("linger");
    let mut client = ok(a.subscribe(SubscribeRequest::channel(&ch)).await, "sub").client;
    ok(b.publish(PublishRequest::new(&ch, "1")).await, "publish");
    let seen = next_event(&mut client, "first").await;
    drop(client);
    ok(b.publish(PublishRequest::new(&ch, "2")).await, "publish");
    let mut back = ok(a.subscribe(resume(&ch, seen.id)).await, "back");
    let mut got: Vec<String> = back.replay[0]
        .events
        .iter()
        .map(|e| text(e).to_owned())
        .collect();
    if got.is_empty() {
        // "2" was still on its way: it comes live, once.
        got.push(text(&next_event(&mut back.client, "live").await).to_owned());
    }
    assert_eq!(
        (back.replay[0].gap.as_ref(), got),
        (None, vec!["2".to_owned()])
    );
    let last = ok(a.store().head(&ch).await, "head");
    drop(back);
    eventually("the channel released after the linger", || {
        a.channel_count() == 0
    })
    .await;
    ok(b.publish(PublishRequest::new(&ch, "3")).await, "publish");
    let sub = ok(a.subscribe(resume(&ch, last)).await, "after the linger");
    let gap = sub.replay[0].gap.as_ref().map(|g| (g.reason, g.head));
    // "3" was published while `a` did not listen, so `a` has no history before it: either
    // none at all, or (when "3" reached `a`'s bus connection only after `a` listened again, a
    // race a broker may lose under load) a new one that "3" starts. Both are a gap.
    let fresh = |head: Position| {
        head == Position::start(Epoch::NONE) || (head.epoch != last.epoch && head.offset == 1)
    };
    assert!(
        matches!(gap, Some((GapReason::EpochChanged, head)) if fresh(head)),
        "a resume across a break in listening is a gap: {gap:?}"
    );
}
