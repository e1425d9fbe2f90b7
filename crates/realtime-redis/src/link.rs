//! The subscriber connection, watched.
//!
//! redis-rs reconnects a dropped connection a few times and then gives up until the next
//! command is sent on it; a pub/sub connection sends none, so after an outage of more than a
//! few seconds it would stay down for good while heartbeats keep every stream looking
//! healthy. A watchdog therefore PINGs it periodically (which is what makes redis-rs try
//! again), with a capped back-off while the server is away, replaces the connection when it
//! stops answering altogether, and after every recovery resubscribes every channel and tells
//! each subscription it was interrupted, so the manager repairs from the store.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::RwLock;
use realtime_core::driver::Inbox;
use realtime_core::metrics as m;
use realtime_core::{BackendError, BackendErrorKind, Result};
use redis::{PushInfo, PushKind, Value};

use crate::config::RedisBusConfig;
use crate::error::{connect_failed, failed};
use crate::pubsub::{Names, Subscriber, Subscribers};

/// Failed probes in a row after which the connection is replaced by a new one (a connection
/// that times out without dropping is never reconnected by redis-rs itself).
const REPLACE_AFTER: u32 = 3;

/// Failed probes of a cluster's masters in a row after which the cluster connection is
/// rebuilt (and again at every failed probe after).
const CLUSTER_REBUILD_AFTER: u32 = 2;

pub(crate) struct Link {
    subscribers: Subscribers,
    connection: RwLock<Subscriber>,
    inbox: Inbox,
    names: Names,
    connected: AtomicBool,
    reconnects: AtomicU64,
    timeout: Duration,
}

impl Link {
    /// Connects the subscriber connection (RESP3, pushes into `inbox`).
    pub(crate) async fn connect(config: &RedisBusConfig, inbox: Inbox) -> Result<Arc<Link>> {
        let names = Names::new(&config.prefix, config.cluster);
        let sink = Push {
            inbox: inbox.clone(),
            names: names.clone(),
        };
        let push = move |push: PushInfo| {
            sink.push(push);
            Ok::<(), redis::aio::SendError>(())
        };
        let subscribers = Subscribers::new(config.endpoint(), push)
            .map_err(|e| connect_failed(&config.url, e))?;
        let connection = subscribers
            .connect()
            .await
            .map_err(|e| connect_failed(&config.url, e))?;
        metrics::gauge!(m::BUS_CONNECTED, "backend" => "redis").set(1.0);
        Ok(Arc::new(Link {
            subscribers,
            connection: RwLock::new(connection),
            inbox,
            names,
            connected: AtomicBool::new(true),
            reconnects: AtomicU64::new(0),
            timeout: config.operation_timeout,
        }))
    }

    pub(crate) fn connection(&self) -> Subscriber {
        self.connection.read().clone()
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Acquire)
    }

    /// The pub/sub names of this bus.
    pub(crate) fn names(&self) -> &Names {
        &self.names
    }

    /// The pub/sub channel of an event channel.
    pub(crate) fn redis_channel(&self, channel: &str) -> String {
        self.names.redis_channel(channel)
    }

    /// SUBSCRIBE on the current connection, within the operation timeout; fails at once
    /// while the connection is known to be down.
    pub(crate) async fn subscribe(&self, name: &str) -> Result<(), BackendError> {
        if !self.is_connected() {
            return Err(BackendError::new(
                "redis",
                BackendErrorKind::Connection,
                "the pub/sub connection is down (reconnecting)",
            ));
        }
        self.subscribe_now(name).await
    }

    /// SUBSCRIBE on the current connection, within the operation timeout.
    async fn subscribe_now(&self, name: &str) -> Result<(), BackendError> {
        let mut connection = self.connection();
        match tokio::time::timeout(self.timeout, connection.subscribe(name)).await {
            Ok(result) => result.map_err(failed("subscribe", self.names.channel(name))),
            Err(_) => Err(BackendError::new(
                "redis",
                BackendErrorKind::Timeout,
                format!("SUBSCRIBE did not answer within {:?}", self.timeout),
            )),
        }
    }

    async fn ping(&self) -> bool {
        self.connection().answers(self.timeout).await
    }

    /// Subscribes channels again on the current connection (SUBSCRIBE is idempotent) and
    /// tells their subscriptions; `false` if the connection failed on the way. `all` after
    /// the link was down: a confirmation seen meanwhile may have come from a connection that
    /// was replaced since, so no channel's flag is trusted then.
    async fn resubscribe(&self, all: bool) -> bool {
        let _guard = self.inbox.lock().await;
        for channel in self.inbox.to_resubscribe(all) {
            if self
                .subscribe_now(&self.redis_channel(&channel))
                .await
                .is_err()
            {
                return false;
            }
            self.inbox.resubscribed(&channel);
        }
        true
    }

    /// The probe failed `failures` times in a row; `answered` whether the server (every
    /// master, on a cluster) answered the PING, i.e. only a resubscription failed.
    async fn went_down(&self, failures: u32, answered: bool) {
        if self.connected.swap(false, Ordering::AcqRel) {
            tracing::warn!("redis pub/sub connection is down; retrying until it is back");
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "redis").set(0.0);
        }
        self.inbox.connection_lost();
        match self.connection() {
            // A cluster's connection is rebuilt in place, from the nodes seen, when a master
            // failed two probes in a row (one missed PING may be a stall; a master that hangs
            // is one redis-rs would go on routing to). Not when only a channel could not be
            // subscribed again: its slot may have no master for now, and a rebuild would not
            // give it one, only drop every other shard's subscriptions.
            Subscriber::Cluster(cluster) => {
                if !answered && failures >= CLUSTER_REBUILD_AFTER {
                    cluster.rebuild().await;
                }
            }
            Subscriber::Single(_) if failures.is_multiple_of(REPLACE_AFTER) => {
                match self.subscribers.lazy() {
                    Some(Ok(connection)) => *self.connection.write() = connection,
                    Some(Err(error)) => {
                        tracing::warn!(%error, "cannot create a new pub/sub connection");
                    }
                    None => {}
                }
            }
            Subscriber::Single(_) => {}
        }
    }

    fn came_back(&self) {
        if !self.connected.swap(true, Ordering::AcqRel) {
            let n = self.reconnects.fetch_add(1, Ordering::AcqRel) + 1;
            tracing::info!(
                reconnects = n,
                "redis pub/sub connection is back; channels resubscribed"
            );
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "redis").set(1.0);
            metrics::counter!(m::BUS_RECONNECTS, "backend" => "redis").increment(1);
        }
    }
}

/// Probes the link every `interval` while it is up, backing off to `max_backoff` while it
/// is down, until the link is dropped.
pub(crate) async fn watch(link: Weak<Link>, interval: Duration, max_backoff: Duration) {
    let mut delay = interval;
    let mut failures = 0u32;
    loop {
        // The probe period, not a synchronisation.
        tokio::time::sleep(delay).await;
        let Some(link) = link.upgrade() else { return };
        let was_down = !link.is_connected();
        let answered = link.ping().await;
        if answered && link.resubscribe(was_down).await {
            link.came_back();
            failures = 0;
            delay = interval;
        } else {
            failures += 1;
            link.went_down(failures, answered).await;
            delay = (delay * 2).min(max_backoff);
        }
    }
}

/// Hands the subscriber connection's pushes to the inbox; never blocks.
#[derive(Clone)]
struct Push {
    inbox: Inbox,
    names: Names,
}

impl Push {
    fn push(&self, push: PushInfo) {
        let channel = |value: Option<&Value>| match value {
            Some(Value::BulkString(name)) => std::str::from_utf8(name)
                .ok()
                .and_then(|name| self.names.channel(name))
                .map(str::to_owned),
            _ => None,
        };
        match push.kind {
            PushKind::Message | PushKind::SMessage => {
                if let (Some(channel), Some(Value::BulkString(frame))) =
                    (channel(push.data.first()), push.data.get(1))
                {
                    self.inbox.frame(&channel, frame);
                }
            }
            PushKind::Disconnection => {
                tracing::warn!("redis pub/sub connection lost; resubscribing");
                self.inbox.connection_lost();
            }
            PushKind::Subscribe | PushKind::SSubscribe => {
                if let Some(channel) = channel(push.data.first()) {
                    self.inbox.resubscribed(&channel);
                }
            }
            // A cluster node that stops owning a slot (a failover, a resharding) drops the
            // shard subscriptions of its channels by itself: subscribe them again (the
            // watchdog does, where the slot lives now), and tell their subscriptions then.
            PushKind::SUnsubscribe => {
                if let Some(channel) = channel(push.data.first()) {
                    self.inbox.subscription_lost(&channel);
                }
            }
            _ => {}
        }
    }
}
