//! The Redis pub/sub bus: one multiplexed subscriber connection per instance.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use realtime_core::driver::{BusDriver, DriverBus, Inbox, OnDriver};
use realtime_core::{Bus, PublishTarget, Reach, Result};

use crate::config::{RedisBusConfig, server_of_endpoint};
use crate::connection::{Commands, connect};
use crate::error::{failed, once_more, reconnectable};
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
///
/// A [`BusDriver`] under core's [`DriverBus`], which keeps the subscriber table and the
/// event [`frame`](realtime_core::frame) format.
pub struct RedisBus {
    bus: DriverBus<RedisDriver>,
}

/// The Redis side of [`RedisBus`]: PUBLISH, SUBSCRIBE and UNSUBSCRIBE on its connections.
struct RedisDriver {
    config: RedisBusConfig,
    /// The server, as [`PublishTarget::server`] names it (computed once).
    server: String,
    publisher: Commands,
    link: Arc<Link>,
    watchdog: tokio::task::JoinHandle<()>,
}

impl RedisBus {
    /// Connects the publisher and subscriber connections of `config` (validated first) and
    /// starts watching the subscriber connection.
    pub async fn connect(config: RedisBusConfig) -> Result<Self> {
        config.validate()?;
        let publisher = connect(config.endpoint(), config.max_connections).await?;
        let inbox = Inbox::new("redis", config.subscription_capacity);
        let link = Link::connect(&config, inbox.clone()).await?;
        let watchdog = tokio::spawn(link::watch(
            Arc::downgrade(&link),
            config.health_interval,
            config.max_reconnect_backoff,
        ));
        let driver = RedisDriver {
            server: server_of_endpoint(&config.endpoint()),
            config,
            publisher,
            link,
            watchdog,
        };
        Ok(RedisBus {
            bus: DriverBus::new(driver, inbox),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisBusConfig {
        &self.bus.driver().config
    }

    /// Whether the bus is closed.
    pub fn is_closed(&self) -> bool {
        self.bus.is_closed()
    }

    /// Pub/sub channels this instance is subscribed to.
    pub fn subscribed_channels(&self) -> usize {
        self.bus.channel_count()
    }

    /// Whether the subscriber connection answered its last health probe. While it is
    /// `false`, new subscriptions fail at once with a retryable error, and every existing
    /// one is told it was interrupted once the connection is back.
    pub fn is_connected(&self) -> bool {
        self.bus.driver().link.is_connected()
    }

    /// How many times the subscriber connection came back after being down.
    pub fn reconnects(&self) -> u64 {
        self.bus.driver().link.reconnects()
    }
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl BusDriver for RedisDriver {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        let mut command = redis::cmd(self.link.names().publish_command());
        command.arg(self.link.redis_channel(channel)).arg(frame);
        // A second copy of a message is harmless: subscribers drop duplicates by position.
        once_more(reconnectable, || {
            let (command, mut connection) = (&command, self.publisher.clone());
            async move { command.exec_async(&mut connection).await }
        })
        .await
        .map_err(|e| failed("publish", Some(channel))(e).into())
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let name = self.link.redis_channel(channel);
        self.link.subscribe(&name).await.map_err(Into::into)
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let name = self.link.redis_channel(channel);
        self.link
            .connection()
            .unsubscribe(&name)
            .await
            .map_err(|e| failed("unsubscribe", Some(channel))(e).into())
    }

    fn reach(&self) -> Reach {
        Reach::Network
    }

    fn publish_target(&self, channel: &str) -> Option<PublishTarget> {
        Some(PublishTarget::new(
            "redis",
            self.server.clone(),
            self.link.redis_channel(channel),
        ))
    }

    async fn check(&self) -> Result<()> {
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
        .map_err(|e| failed("ping", None)(e).into())
    }

    async fn close(&self, channels: Vec<String>) -> Result<()> {
        self.watchdog.abort();
        let mut connection = self.link.connection();
        for channel in channels {
            let name = self.link.redis_channel(&channel);
            let unsubscribe = connection.unsubscribe(&name);
            // Bounded: with Redis away, close does not wait a timeout per channel.
            match tokio::time::timeout(self.config.operation_timeout, unsubscribe).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%channel, %error, "unsubscribe on close failed"),
                Err(_) => {
                    tracing::debug!(%channel, "unsubscribe on close timed out; the connection goes with the bus");
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Drop for RedisDriver {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

impl OnDriver for RedisBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}
