//! The conformance suite against a Redis Cluster (`cargo xtask services` starts a local one
//! on 127.0.0.1:30001–30006; `REALTIME_REDIS_CLUSTER_URL` names another): keys routed by
//! slot, the bus on sharded pub/sub, in both history modes.

mod common;

mod shared {
    use super::common;
    realtime_conformance::conformance_tests!(common::RedisBackend::connect_cluster().await);
}

mod per_instance {
    use super::common;
    realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
        common::RedisBackend::connect_cluster().await
    ));
}

/// The bus's subscriptions are shard subscriptions, on the master that owns the channel's
/// slot only; nothing is on classic pub/sub (which a cluster copies to every node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_sharded_on_the_channels_master() {
    use realtime_conformance::Backend;
    let backend = common::RedisBackend::connect_cluster().await;
    let manager = realtime_core::Manager::builder()
        .store(backend.store().await.unwrap())
        .bus(backend.bus().await.unwrap())
        .build()
        .unwrap();
    let _client = manager
        .subscribe(realtime_core::SubscribeRequest::channel("orders"))
        .await
        .unwrap();
    let seed = redis::Client::open(common::cluster_url()).unwrap();
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut seed.get_multiplexed_async_connection().await.unwrap())
        .await
        .unwrap();
    let pattern = format!("{}*", backend.prefix);
    let (mut sharded_on, mut classic) = (Vec::new(), 0);
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let address = fields[1].split('@').next().unwrap();
        let node = redis::Client::open(format!("redis://{address}")).unwrap();
        let mut node = node.get_multiplexed_async_connection().await.unwrap();
        let shard: Vec<String> = redis::cmd("PUBSUB")
            .arg("SHARDCHANNELS")
            .arg(&pattern)
            .query_async(&mut node)
            .await
            .unwrap();
        let plain: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(&pattern)
            .query_async(&mut node)
            .await
            .unwrap();
        if shard.iter().any(|name| name.ends_with("{orders}")) {
            sharded_on.push((fields[2].contains("master"), address.to_owned()));
        }
        classic += plain.len();
    }
    assert_eq!(classic, 0, "no classic pub/sub subscription");
    assert_eq!(
        sharded_on.len(),
        1,
        "one shard subscription: {sharded_on:?}"
    );
    assert!(sharded_on[0].0, "on a master: {sharded_on:?}");
}

/// A cluster node used as one server would answer MOVED for most channels, forever: refused
/// at connect, saying which setting is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_without_cluster_mode_is_refused() {
    let store = realtime_redis::RedisStore::connect(realtime_redis::RedisStoreConfig::new(
        common::cluster_url(),
    ))
    .await;
    let bus = realtime_redis::RedisBus::connect(realtime_redis::RedisBusConfig::new(
        common::cluster_url(),
    ))
    .await;
    for error in [store.err(), bus.err()] {
        assert!(
            matches!(
                error,
                Some(realtime_core::Error::InvalidConfig {
                    field: "cluster",
                    ..
                })
            ),
            "{error:?}"
        );
    }
}
