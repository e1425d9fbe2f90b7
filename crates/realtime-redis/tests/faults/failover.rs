//! Redis Cluster: the master that owns the channel's slot is killed mid-stream and its
//! replica takes over.

use super::*;
use common::cluster::OwnCluster;

/// An instance on `cluster` (sharded pub/sub), quick to notice a lost node.
async fn cluster_instance(cluster: &OwnCluster) -> Instance {
    let mut store = RedisStoreConfig::new(cluster.url());
    store.cluster = true;
    store.operation_timeout = Duration::from_secs(1);
    let mut bus = RedisBusConfig::new(cluster.url());
    bus.cluster = true;
    bus.operation_timeout = Duration::from_secs(1);
    bus.health_interval = Duration::from_millis(250);
    bus.max_reconnect_backoff = Duration::from_secs(2);
    let bus = Arc::new(RedisBus::connect(bus).await.unwrap());
    let mut config = ManagerConfig::default();
    config.client_buffer = 4_096;
    let manager = Manager::builder()
        .config(config)
        .store(Arc::new(RedisStore::connect(store).await.unwrap()))
        .bus(bus.clone())
        .build()
        .unwrap();
    Instance { manager, bus }
}

/// A hash tag whose slot (12182) a three-master cluster gives to another master than
/// [`CHANNEL`]'s (105).
const OTHER_SHARD: &str = "foo";

/// A publishing instance and a subscribing one (three subscribers) on `cluster`.
async fn two_instances(cluster: &OwnCluster) -> (Instance, Instance, Subscribers) {
    let (a, b) = (
        cluster_instance(cluster).await,
        cluster_instance(cluster).await,
    );
    let subscribers = Subscribers::join(&b, 3).await;
    (a, b, subscribers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_cluster_master_failing_over_mid_stream() {
    let mut cluster = OwnCluster::start();
    // The subscribers' instance stays alive to the end.
    let (a, _b, mut subscribers) = two_instances(&cluster).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("before the failover").await;

    let master = cluster.master_of(CHANNEL, cluster.ports[0]);
    cluster.kill(master);
    // Publishing goes on: refusals while the slot has no master are retryable and retried.
    publish(&a, &mut subscribers, 10).await;
    cluster.wait_for_failover(CHANNEL, master);
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("after the failover").await;
    // The promoted replica is another server: the channel's history starts a new epoch
    // (it may lack acknowledged writes), which subscribers see as a gap, never as a hole.
    let counts =
        subscribers.verdict("redis cluster: the channel's master killed, replica promoted");
    assert!(counts.delivered >= 20, "{counts}");
    // And delivery is live on the new master, not only repaired.
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

/// The channel's master away for a minute: its replica takes over within seconds, events
/// are published (and read) all through the minute, then the old master comes back — empty,
/// nothing persisted — and rejoins as a replica. Every event once or inside a gap, and live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_cluster_master_away_for_a_minute() {
    let mut cluster = OwnCluster::start();
    let (a, _b, mut subscribers) = two_instances(&cluster).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("before the outage").await;

    let master = cluster.master_of(CHANNEL, cluster.ports[0]);
    cluster.kill(master);
    let down = Instant::now();
    let mut promoted = None;
    while down.elapsed() < Duration::from_secs(60) {
        publish(&a, &mut subscribers, 1).await;
        subscribers.settle("while the master is away").await;
        if promoted.is_none()
            && cluster
                .try_master_of(
                    CHANNEL,
                    cluster
                        .ports
                        .iter()
                        .copied()
                        .find(|&p| p != master)
                        .unwrap(),
                )
                .is_some_and(|m| m != master)
        {
            promoted = Some(down.elapsed());
        }
        // The pace of publishing through the minute.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(promoted.is_some(), "a replica took over within the minute");
    let restarted = Instant::now();
    cluster.restart_as_replica(master);
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("after the old master rejoined").await;
    println!(
        "redis cluster: replica promoted {promoted:.1?} after the kill; old master back as a \
         replica in sync {:.1?} after its restart",
        restarted.elapsed()
    );
    let counts = subscribers
        .verdict("redis cluster: the channel's master away 60 s, back empty as a replica");
    assert!(counts.delivered >= 20, "{counts}");
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

/// The channel's master hangs (SIGSTOP: its connections stay open, it answers nothing) — the
/// configured node at that, so a new connection cannot start from it. The cluster promotes
/// its replica; the instances must notice the hang themselves (no connection drops), find
/// the new master and repair: every event once or an explicit gap, live after, and still
/// live once the old master wakes up as a replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_a_cluster_master_hanging_mid_stream() {
    let mut cluster = OwnCluster::start();
    // The subscribers' instance stays alive to the end.
    let (a, _b, mut subscribers) = two_instances(&cluster).await;
    publish(&a, &mut subscribers, 20).await;
    subscribers.settle("before the hang").await;

    let master = cluster.master_of(CHANNEL, cluster.ports[0]);
    cluster.pause(master);
    publish(&a, &mut subscribers, 10).await;
    cluster.wait_for_failover(CHANNEL, master);
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("after the failover").await;
    cluster.resume(master);
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("after the old master woke").await;
    let counts = subscribers.verdict("redis cluster: the channel's master hung, replica promoted");
    assert!(counts.delivered >= 20, "{counts}");
    for (client, tally) in &mut subscribers.clients {
        publish_one_and_expect(&a, client, tally).await;
    }
}

/// Every node's script cache emptied (as after restarts, or on a promoted replica) while
/// another shard's master hangs: an append must need only its own slot's master (`SCRIPT
/// LOAD` on a cluster goes to every node), and appends go on, delivered, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a fault scenario: `cargo xtask faults` runs it (and `cargo xtask test`)"]
async fn fault_cluster_scripts_flushed_while_another_master_hangs() {
    let mut cluster = OwnCluster::start();
    // The subscribers' instance stays alive to the end.
    let (a, _b, mut subscribers) = two_instances(&cluster).await;
    publish(&a, &mut subscribers, 10).await;
    subscribers.settle("before").await;

    let own = cluster.master_of(CHANNEL, cluster.ports[0]);
    let other = cluster.master_of(OTHER_SHARD, cluster.ports[0]);
    assert_ne!(own, other);
    cluster.pause(other);
    cluster.on_every_node_but(other, &["script", "flush"]);
    // Each append succeeds at its first attempt (no retry hides a failure here).
    for i in 0..10 {
        let request = PublishRequest::new(CHANNEL, format!("after the flush {i}"));
        match a.manager.publish(request).await {
            Ok(stored) => subscribers.published(stored.id),
            Err(error) => panic!("append {i} with the scripts flushed: {error}"),
        }
    }
    subscribers
        .settle("scripts flushed, another master hung")
        .await;
    let counts = subscribers.verdict("redis cluster: scripts flushed while another master hangs");
    assert_eq!((counts.delivered, counts.covered), (20, 0), "{counts}");
}
