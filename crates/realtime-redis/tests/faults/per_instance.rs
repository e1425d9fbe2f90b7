//! Per-instance history on a Redis bus: what pub/sub loses while Redis is away cannot be read
//! back from any store, so it must end in a `lost` gap, never a silent hole.

use realtime_conformance::tally::Sequence;
use realtime_core::History;

use super::*;

async fn per_instance(url: &str) -> Instance {
    let bus = connect_bus(url).await;
    let mut config = ManagerConfig::default();
    config.client_buffer = 4_096;
    config.history = History::PerInstance;
    // The outage outlasts the publisher's background retries: the receiver must see a hole.
    config.broadcast_retry = Duration::from_millis(500);
    let manager = Manager::builder()
        .config(config)
        .bus(bus.clone())
        .build()
        .unwrap();
    Instance { manager, bus }
}

/// Publishes `n` payloads `<label> <i>` on `instance`, recording each in every tally.
async fn publish_payloads(
    instance: &Instance,
    tallies: &mut [(Client, Sequence)],
    label: &str,
    n: usize,
) {
    for i in 0..n {
        let data = bytes::Bytes::from(format!("{label} {i}"));
        // The store is this instance's own: publishing succeeds even while the bus is away.
        instance
            .manager
            .publish(PublishRequest::new(CHANNEL, data.clone()))
            .await
            .unwrap();
        for (_, tally) in tallies.iter_mut() {
            tally.published(data.clone());
        }
    }
}

async fn settle(tallies: &mut [(Client, Sequence)], what: &str) {
    let deadline = Instant::now() + DEADLINE;
    for (client, tally) in tallies.iter_mut() {
        while !tally.is_settled() {
            match tokio::time::timeout_at(deadline, client.recv()).await {
                Ok(Some(message)) => tally.received(&message),
                Ok(None) => panic!("{what}: client closed: {:?}", client.close_reason()),
                Err(_) => panic!("{what}: not settled in {DEADLINE:?}: {}", tally.counts()),
            }
        }
    }
}

/// Redis, the bus only, killed for 3 s while one instance publishes: the other instance's
/// subscribers get every event once or a `lost` gap covering it, and live delivery after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_per_instance_history_turns_a_bus_outage_into_a_gap() {
    let mut server = OwnRedis::start(Persistence::None);
    let (a, b) = (
        per_instance(&server.url()).await,
        per_instance(&server.url()).await,
    );
    let mut tallies = Vec::new();
    for _ in 0..3 {
        let client = b
            .manager
            .subscribe(SubscribeRequest::channel(CHANNEL))
            .await
            .unwrap()
            .client;
        tallies.push((client, Sequence::new()));
    }
    publish_payloads(&a, &mut tallies, "before", 20).await;
    settle(&mut tallies, "before the outage").await;
    server.kill();
    wait_until("the bus reports the connection down", || {
        !b.bus.is_connected()
    })
    .await;
    publish_payloads(&a, &mut tallies, "during", 10).await;
    // The length of the fault, not a synchronisation.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.restart();
    wait_until("the bus reports the connection back", || {
        b.bus.is_connected()
    })
    .await;
    wait_until("the publisher's bus is back", || a.bus.is_connected()).await;
    publish_payloads(&a, &mut tallies, "after", 20).await;
    settle(&mut tallies, "after the restart").await;
    let counts: Vec<_> = tallies.iter().map(|(_, t)| t.counts()).collect();
    for c in &counts {
        assert!(c.is_exact_or_honest(), "{c}");
        assert!(c.gaps >= 1, "what the bus lost is signalled: {c}");
    }
    println!(
        "{}",
        counts[0].row("redis (bus only) killed 3 s, per-instance history")
    );
    // Live again: one more event arrives as an event, not under a gap.
    let delivered: Vec<u64> = counts.iter().map(|c| c.delivered).collect();
    publish_payloads(&a, &mut tallies, "live", 1).await;
    settle(&mut tallies, "live").await;
    for ((_, tally), before) in tallies.iter().zip(delivered) {
        assert_eq!(tally.counts().delivered, before + 1, "{}", tally.counts());
    }
}
