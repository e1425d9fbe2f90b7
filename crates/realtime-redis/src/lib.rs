//! # realtime-redis
//!
//! A [`Store`](realtime_core::Store) on Redis Streams and a [`Bus`](realtime_core::Bus) on
//! Redis pub/sub, so several instances share history and fan-out.
//!
//! ```no_run
//! use std::sync::Arc;
//! use realtime_core::Manager;
//! use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};
//!
//! # async fn run() -> realtime_core::Result<()> {
//! let store = RedisStore::connect(RedisStoreConfig::default()).await?;
//! let bus = RedisBus::connect(RedisBusConfig::default()).await?;
//! let manager = Manager::builder().store(Arc::new(store)).bus(Arc::new(bus)).build()?;
//! # Ok(()) }
//! ```
//!
//! ## Store
//! Per channel, a hash `<prefix>{<channel>}:m` holds the epoch and the offset counter, and a
//! stream `<prefix>{<channel>}:s` the events with entry id `0-<offset>`. One Lua script per
//! append takes the next offset, adds the entry, trims to `max_events_per_channel` exactly and
//! refreshes the TTL; a channel whose keys expired or were flushed gets a new random epoch.
//! Reads (one atomic round trip: MULTI/EXEC on one server, a script on a cluster) seek with
//! `XRANGE (0-<offset> + COUNT n` and write nothing but TTL refreshes of keys that exist: subscribers of a channel nobody published to create no keys. The `{channel}`
//! hash tag keeps a channel's keys on one Redis Cluster slot. A third key,
//! `<prefix>{<channel>}:k`, indexes idempotency keys by offset (pruned with the stream).
//!
//! A history that Redis lost is never confused with the one before: a channel whose meta hash
//! is gone (expired, evicted) reads as having no history and its next append starts a new
//! epoch (clearing a stale stream); with
//! [`detect_restarts`](RedisStoreConfig::detect_restarts) (default on) the first append after
//! the server restarted, was restored from a snapshot or failed over starts a new epoch too,
//! since such a server may have lost acknowledged events whose offsets would otherwise be
//! reused. `connect` warns when `maxmemory-policy` lets Redis evict keys
//! ([`RedisStore::check_server`]); use `noeviction`.
//!
//! With a [`RedisBus`] on the same server, the manager publishes in one round trip: the
//! append script also PUBLISHes the positioned message (measured about 40% faster than an
//! append followed by a PUBLISH; `cargo xtask bench`).
//!
//! ## Bus
//! Each instance keeps one RESP3 subscriber connection for all its channels (SUBSCRIBE once
//! per channel, reference counted) that reconnects and resubscribes by itself. Messages
//! carry the event's position; after a reconnect every subscription yields
//! [`BusMessage::Interrupted`](realtime_core::BusMessage), and the manager reads what was
//! published meanwhile from the store, so no client sees a hole. A watchdog PINGs the
//! subscriber connection every [`health_interval`](RedisBusConfig::health_interval) and keeps
//! reconnecting while Redis is away (redis-rs alone gives up after a few attempts), replaces a
//! connection that stops answering, and resubscribes every channel after each recovery;
//! [`RedisBus::is_connected`], [`RedisBus::reconnects`] and the `realtime_bus_connected` /
//! `realtime_bus_reconnects_total` metrics show its state.
//!
//! ## Redis Cluster
//! With [`cluster`](RedisStoreConfig::cluster) set on both configs, `url` names one node of
//! a Redis Cluster (7.0+) and the rest are found from it. A channel's keys share a slot
//! through the `{channel}` hash tag, each script runs on that slot's master, and the bus
//! uses sharded pub/sub: `SPUBLISH` (from the append script itself, in the same round trip)
//! to the pub/sub channel `<prefix>\x1f{<channel>}` in the same slot, `SSUBSCRIBE` on the
//! master that owns it. Classic `PUBLISH` would be copied to every node of the cluster;
//! sharded messages stay on one shard, so adding shards adds pub/sub capacity.
//!
//! When a master fails and its replica takes over, the bus notices the lost connection,
//! subscribes its channels again on the new master (retrying while the slot has none) and
//! tells each subscription it was interrupted; the store's next append on the promoted
//! replica starts a new epoch (it may lack the last acknowledged writes), so clients get
//! every event once or an `epoch_changed` gap, never a silent hole
//! (`cargo xtask faults`, `fault_a_cluster_master_failing_over_mid_stream`). The cluster
//! connection reconnects nodes and follows slot moves by itself, except from a master that
//! *hangs* (a stopped process, a frozen VM: its connections stay open, it answers nothing),
//! which redis-rs would keep routing to after the cluster promoted its replica. So a command
//! that times out or whose connection fails makes the instance PING every master, and the bus
//! does so at every health check; when one does not answer, the cluster connection is built
//! again from every node seen (`CLUSTER NODES`, the configured node included, which may be the
//! hung one) and the bus subscribes its channels again and repairs them
//! (`fault_a_cluster_master_hanging_mid_stream`; counted in [`CLUSTER_REBUILDS`]). A
//! cluster whose configured node is gone at start-up cannot be joined (name a node that is
//! up). A cluster node configured without `cluster` is refused at connect. On a cluster every
//! append carries an idempotency key (its own when the publisher gave none): the cluster
//! client re-sends a command whose connection dropped, and the key makes the second run a
//! no-op. Scripts are called by hash and, on `NOSCRIPT` (a restarted node, a promoted
//! replica), sent whole to the channel's master only: `SCRIPT LOAD` goes to every node of a
//! cluster and fails while any one is down (`fault_cluster_scripts_flushed_while_another_master_hangs`).
//!
//! Known limits on a cluster: until the cluster promotes a hung master's replica (its
//! `cluster-node-timeout`, 15 s by default), that master's channels get retryable timeouts
//! on append and no live delivery (they repair once it is replaced); a slot moved by
//! resharding starts a new epoch for its channels when restart detection is on (an
//! `epoch_changed` gap although nothing was lost); a dropped connection to any node, or a
//! master not answering a health check, makes every subscription of the instance repair from
//! the store. `rediss://` on a cluster verifies the nodes' certificates against the
//! addresses the cluster announces (IP addresses unless it announces hostnames).
//!
//! ```no_run
//! # async fn run() -> realtime_core::Result<()> {
//! use std::sync::Arc;
//! use realtime_core::Manager;
//! use realtime_redis::{RedisBus, RedisBusConfig, RedisStore, RedisStoreConfig};
//!
//! let mut store = RedisStoreConfig::new("redis://10.0.0.5:6379");
//! store.cluster = true;
//! let mut bus = RedisBusConfig::new("redis://10.0.0.5:6379");
//! bus.cluster = true;
//! let manager = Manager::builder()
//!     .store(Arc::new(RedisStore::connect(store).await?))
//!     .bus(Arc::new(RedisBus::connect(bus).await?))
//!     .build()?;
//! # drop(manager); Ok(()) }
//! ```
//!
//! ## TLS
//! `rediss://` URLs connect over TLS (rustls on aws-lc-rs), verifying the server's
//! certificate against the system's roots, or only against
//! [`root_certificate_pem`](RedisStoreConfig::root_certificate_pem) when set (a private CA):
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use realtime_redis::{RedisStore, RedisStoreConfig};
//!
//! let mut config = RedisStoreConfig::new("rediss://:password@redis.internal:6380");
//! config.root_certificate_pem = Some(std::fs::read("/etc/realtime/redis-ca.pem")?);
//! let store = RedisStore::connect(config).await?;
//! # drop(store); Ok(()) }
//! ```
//!
//! An application that enables a second rustls crypto provider (ring) must install one as
//! the process default before connecting: redis-rs takes rustls' default.
//!
//! ## Errors
//! Failures are [`realtime_core::Error::Backend`] with backend `"redis"` and a kind:
//! `Connection` and `Timeout` are retryable, `Protocol` and `Decode` are not.

mod bus;
mod cluster;
mod codec;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod connection;
mod error;
mod link;
mod pubsub;
mod reply;
mod scripts;
mod store;

pub use bus::RedisBus;
pub use cluster::CLUSTER_REBUILDS;
pub use config::{DEFAULT_URL, RedisBusConfig, RedisStoreConfig, redact};
pub use store::RedisStore;
