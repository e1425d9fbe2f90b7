//! The Kafka bus: one topic, a channel's events on one partition, partitions assigned by
//! hand so every instance reads every event of the channels it serves.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::producer::FutureRecord;
use realtime_core::driver::{BusDriver, DriverBus, Inbox, OnDriver};
use realtime_core::{Bus, Reach, Result};

use crate::config::KafkaBusConfig;
use crate::error::{failed, timed_out};
use crate::hooks::Hooks;
use crate::link::{self, Link};
use crate::security::Sasl;
use crate::topic::{partition_count, partition_of};
use crate::watch::{OffThread, Watch};

/// Cross-instance fan-out over one Kafka topic.
///
/// Publishing sends the event to the partition of its channel ([`KafkaBusConfig::topic`];
/// FNV-1a of the channel's name modulo the topic's partition count), so a channel's events
/// keep their order; the producer is idempotent with `acks=all`, and a publish not
/// acknowledged within [`KafkaBusConfig::send_timeout`] fails with a retryable error.
///
/// There is no consumer group: every instance must see every event of the channels it has
/// subscribers for, so each assigns itself the partition of a channel when the channel's
/// first local subscriber arrives — at the partition's end, asked of the broker before
/// `subscribe` returns, so the subscription is active then — and releases it with the last.
/// When the brokers are unreachable (or a partition's log no longer holds the next offset),
/// the bus marks every subscription interrupted; once they answer again it reads each
/// partition from its end and tells the subscriptions, which repair from the store (or, with
/// history per instance, report a gap).
pub struct KafkaBus {
    bus: DriverBus<KafkaDriver>,
}

struct KafkaDriver {
    link: Arc<Link>,
    watchdog: tokio::task::JoinHandle<()>,
}

impl KafkaBus {
    /// Connects to the brokers of `config` (validated first): creates the topic when it is
    /// missing (if [`KafkaBusConfig::create_topic`]), reads its partition count, and starts
    /// the consumer. Unreachable brokers are a retryable error saying so.
    pub async fn connect(config: KafkaBusConfig) -> Result<Self> {
        config.validate()?;
        if let Some(sasl @ Sasl::Plain { .. }) =
            config.sasl.as_ref().filter(|_| config.tls.is_none())
        {
            tracing::warn!(
                username = sasl.username().unwrap_or_default(),
                "kafka SASL PLAIN without TLS: the password crosses the network in clear"
            );
        }
        let hooks = Hooks::new(&config);
        let inbox = Inbox::new("kafka", config.subscription_capacity);
        let watch = Watch::new(inbox.clone(), hooks);
        let group = format!("realtime-bus-{:016x}", rand_id());
        let consumer = Arc::new(OffThread::new(link::new_consumer(
            &config,
            watch.clone(),
            &group,
        )?));
        let partitions = partition_count(consumer.clone(), &config).await?;
        let health_interval = config.health_interval;
        let link = Link::connect(config, watch, group, partitions, consumer)?;
        let watchdog = tokio::spawn(link::watchdog(Arc::downgrade(&link), health_interval));
        Ok(KafkaBus {
            bus: DriverBus::new(KafkaDriver { link, watchdog }, inbox),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaBusConfig {
        self.bus.driver().link.config()
    }

    /// The topic's partition count, as the broker reported it at connect.
    pub fn partitions(&self) -> i32 {
        self.bus.driver().link.partitions
    }

    /// The partition `channel`'s events go to.
    pub fn partition_of(&self, channel: &str) -> i32 {
        partition_of(channel, self.partitions())
    }

    /// Whether the brokers answered since the bus last found them all unreachable. While it
    /// is `false`, every subscription is marked interrupted and is told so once they answer.
    pub fn is_connected(&self) -> bool {
        self.bus.driver().link.is_connected()
    }

    /// How many times the bus came back after the brokers were unreachable.
    pub fn reconnects(&self) -> u64 {
        self.bus.driver().link.reconnects()
    }

    /// Partitions this instance reads (those of its subscribed channels).
    pub fn assigned_partitions(&self) -> usize {
        self.bus.driver().link.assigned_count()
    }
}

/// A random id for this instance's consumer group name.
fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("config", self.config())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl BusDriver for KafkaDriver {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        let config = self.link.config();
        let producer = self.link.producer()?;
        let record = FutureRecord::to(&config.topic)
            .partition(partition_of(channel, self.link.partitions))
            .key(channel)
            .payload(&frame);
        // The local queue wait is bounded too: a full queue is the brokers being away.
        let sent = producer.send(record, config.send_timeout);
        match tokio::time::timeout(config.send_timeout + Duration::from_secs(1), sent).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(failed("publish", Some(channel))(error).into()),
            Err(_) => Err(timed_out("publish", Some(channel)).into()),
        }
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        self.link.add(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.link.remove(channel)
    }

    fn reach(&self) -> Reach {
        Reach::Network
    }

    async fn check(&self) -> Result<()> {
        self.link.check().await
    }

    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        self.watchdog.abort();
        self.link.close();
        Ok(())
    }
}

impl Drop for KafkaDriver {
    fn drop(&mut self) {
        self.watchdog.abort();
    }
}

impl OnDriver for KafkaBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}
