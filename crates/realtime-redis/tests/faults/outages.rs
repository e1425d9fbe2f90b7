//! Redis killed and restarted: short and long outages, with and without persistence.

use super::*;

/// Two instances on a server of the test's own, subscribers on the second: 20 events, the
/// server away for `length`, 20 more; returns the counts, the publishing instance and the
/// subscribers, after checking the promise.
async fn outage_scenario(
    persistence: Persistence,
    detect_restarts: bool,
    length: Duration,
    scenario: &str,
) -> (Counts, Instance, Subscribers, OwnRedis) {
    let mut server = OwnRedis::start(persistence);
    let (a, b) = (
        instance_with(&server.url(), detect_restarts).await,
        instance_with(&server.url(), detect_restarts).await,
    );
    let mut subscribers = Subscribers::join(&b, 3).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("before the outage").await;
    outage(&mut server, &a, &b, length).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("after the restart").await;
    let counts = subscribers.verdict(scenario);
    (counts, a, subscribers, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_long_outage_without_persistence_ends_in_a_gap_and_live_delivery() {
    // Longer than redis-rs's own reconnect attempts last.
    outage_without_persistence(12).await;
}

/// Redis away for `seconds`, back empty: the history is gone — the events after the restart
/// may be covered by the gap — but delivery must go on live.
async fn outage_without_persistence(seconds: u64) {
    let (counts, a, mut subscribers, _server) = outage_scenario(
        Persistence::None,
        true,
        Duration::from_secs(seconds),
        &format!("redis killed {seconds} s, no persistence"),
    )
    .await;
    assert!(counts.gaps >= 1, "the lost history is signalled: {counts}");
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_restart_with_persistence_is_signalled_by_default() {
    let (counts, ..) = outage_scenario(
        Persistence::AlwaysFsync,
        true,
        Duration::from_secs(2),
        "redis killed 2 s, AOF always, restart detection on",
    )
    .await;
    assert!(
        counts.gaps >= 1,
        "a restarted server starts a new epoch: {counts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_short_outage_with_persistence_loses_nothing() {
    // Every write is on disk before it is acknowledged, so restarts need not be detected.
    let (counts, ..) = outage_scenario(
        Persistence::AlwaysFsync,
        false,
        Duration::from_secs(2),
        "redis killed 2 s, AOF always, restart detection off",
    )
    .await;
    assert_eq!(
        (counts.delivered, counts.gaps),
        (40, 0),
        "the history survived: every event exactly once, no gap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_minute_long_outage_without_persistence_ends_in_a_gap_and_live_delivery() {
    outage_without_persistence(60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_minute_long_outage_with_persistence_loses_nothing() {
    let (counts, a, mut subscribers, _server) = outage_scenario(
        Persistence::AlwaysFsync,
        false,
        Duration::from_secs(60),
        "redis killed 60 s, AOF always, restart detection off",
    )
    .await;
    assert_eq!(
        (counts.delivered, counts.gaps),
        (40, 0),
        "the history survived: every event exactly once, no gap"
    );
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}
