//! The Redis pub/sub bus: one multiplexed subscriber connection per instance.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use realtime_core::{Bus, BusSubscription, Error, Event, Origin, PublishTarget, Reach, Result};
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::codec;
use crate::config::{RedisBusConfig, server_of};
use crate::connection::connect;
use crate::error::{from_redis, once_more, reconnectable};
use crate::link::{self, Link};

/// Cross-instance fan-out over Redis pub/sub.
///
/// All of an instance's subscriptions share one RESP3 connection that resubscribes by itself
/// after it drops; each subscription is then told it was interrupted, and the manager repairs
/// what pub/sub lost from the store. A watchdog PINGs that connection every
/// [`health_interval`](RedisBusConfig::health_interval) and keeps reconnecting, with a
/// capped back-off, for as long as the server is away (gauge `realtime_bus_connected`,
/// counter `realtime_bus_reconnects_total`, a log line per change). Publishing uses a second
/// connection, so a killed subscriber connection never fails a publish.
pub struct RedisBus {
    config: RedisBusConfig,
    /// The server, as [`PublishTarget::server`] names it (computed once).
    server: String,
    publisher: ConnectionManager,
    link: Arc<Link>,
    watchdog: tokio::task::JoinHandle<()>,
    unsubscribe: mpsc::UnboundedSender<String>,
    closed: AtomicBool,
}

impl RedisBus {
    /// Connects the publisher and subscriber connections of `config` (validated first) and
    /// starts watching the subscriber connection.
    pub async fn connect(config: RedisBusConfig) -> Result<Self> {
        config.validate()?;
        let publisher = connect(
            &config.url,
            config.operation_timeout,
            config.max_connections,
        )
        .await?;
        let link = Link::connect(&config).await?;
        let watchdog = tokio::spawn(link::watch(
            Arc::downgrade(&link),
            config.health_interval,
            config.max_reconnect_backoff,
        ));
        let (unsubscribe, requests) = mpsc::unbounded_channel();
        tokio::spawn(unsubscriber(requests, Arc::downgrade(&link)));
        Ok(RedisBus {
            server: server_of(&config.url),
            config,
            publisher,
            link,
            watchdog,
            unsubscribe,
            closed: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisBusConfig {
        &self.config
    }

    /// Whether the bus is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The pub/sub channel of an event channel. The separator cannot occur in a prefix or
    /// channel name.
    pub(crate) fn redis_channel(&self, channel: &str) -> String {
        format!("{}\u{1f}{channel}", self.config.prefix)
    }

    /// Pub/sub channels this instance is subscribed to.
    pub fn subscribed_channels(&self) -> usize {
        self.link.table.channels.read().len()
    }

    /// Whether the subscriber connection answered its last health probe. While it is
    /// `false`, new subscriptions fail at once with a retryable error, and every existing
    /// one is told it was interrupted once the connection is back.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// How many times the subscriber connection came back after being down.
    pub fn reconnects(&self) -> u64 {
        self.link.reconnects()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

/// Unsubscribes channels whose last subscription was dropped (drops cannot await).
async fn unsubscriber(mut requests: mpsc::UnboundedReceiver<String>, link: Weak<Link>) {
    while let Some(name) = requests.recv().await {
        let Some(link) = link.upgrade() else { return };
        let _guard = link.ops.lock().await;
        let empty = {
            let mut channels = link.table.channels.write();
            let empty = channels
                .get(&name)
                .is_some_and(|c| c.subscribers.is_empty());
            if empty {
                channels.remove(&name);
            }
            empty
        };
        if empty && let Err(error) = link.connection().unsubscribe(&name).await {
            tracing::warn!(channel = %name, %error, "unsubscribe failed");
        }
    }
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, event: &Event, origin: Origin) -> Result<()> {
        self.check_open()?;
        let message = codec::encode_message(event, origin);
        let mut command = redis::cmd("PUBLISH");
        command.arg(self.redis_channel(&event.channel)).arg(message);
        // A second copy of a message is harmless: subscribers drop duplicates by position.
        once_more(reconnectable, || {
            let (command, mut connection) = (&command, self.publisher.clone());
            async move { command.exec_async(&mut connection).await }
        })
        .await
        .map_err(|e| from_redis(e).into())
    }

    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.check_open()?;
        let name = self.redis_channel(channel);
        let _guard = self.link.ops.lock().await;
        let id = self.link.table.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, subscription) = {
            let table = Arc::downgrade(&self.link.table);
            let unsubscribe = self.unsubscribe.clone();
            let name = name.clone();
            BusSubscription::channel(self.config.subscription_capacity, move || {
                let Some(table) = table.upgrade() else { return };
                let now_empty = {
                    let mut channels = table.channels.write();
                    channels.get_mut(&name).is_some_and(|c| {
                        c.subscribers.remove(&id);
                        c.subscribers.is_empty()
                    })
                };
                if now_empty {
                    let _ = unsubscribe.send(name);
                }
            })
        };
        let first = {
            let mut channels = self.link.table.channels.write();
            let entry = channels.entry(name.clone()).or_default();
            entry.subscribers.insert(id, sender);
            entry.subscribers.len() == 1
        };
        if first && let Err(error) = self.link.subscribe(&name).await {
            self.link.table.channels.write().remove(&name);
            return Err(error.into());
        }
        Ok(subscription)
    }

    fn reach(&self) -> Reach {
        Reach::Network
    }

    fn publish_target(&self, channel: &str) -> Option<PublishTarget> {
        (!self.is_closed())
            .then(|| PublishTarget::new("redis", self.server.clone(), self.redis_channel(channel)))
    }

    async fn check(&self) -> Result<()> {
        self.check_open()?;
        if !self.link.is_connected() {
            return Err(realtime_core::BackendError::new(
                "redis",
                realtime_core::BackendErrorKind::Connection,
                "the pub/sub connection is down (reconnecting)",
            )
            .into());
        }
        once_more(reconnectable, || {
            let mut connection = self.publisher.clone();
            async move { redis::cmd("PING").query_async::<()>(&mut connection).await }
        })
        .await
        .map_err(|e| from_redis(e).into())
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.watchdog.abort();
        let _guard = self.link.ops.lock().await;
        let names: Vec<String> = self
            .link
            .table
            .channels
            .write()
            .drain()
            .map(|(name, _)| name)
            .collect();
        let mut connection = self.link.connection();
        for name in names {
            // The subscriptions already ended (their senders were dropped with the table).
            if let Err(error) = connection.unsubscribe(&name).await {
                tracing::debug!(channel = %name, %error, "unsubscribe on close failed");
            }
        }
        Ok(())
    }
}

impl Drop for RedisBus {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}
