//! The Kafka bus: one topic, a channel's events on one partition, partitions assigned by
//! hand so every instance reads every event of the channels it serves.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use realtime_core::driver::{BusDriver, DriverBus, Inbox, OnDriver};
use realtime_core::{BackendError, BackendErrorKind, Bus, Reach, Result};

use crate::config::KafkaBusConfig;
use crate::error::{connect_failed, failed, timed_out};
use crate::link::{self, Link, Watch, partition_of};

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
    config: KafkaBusConfig,
    producer: FutureProducer<Watch>,
    link: Arc<Link>,
    reader: tokio::task::JoinHandle<()>,
    watchdog: tokio::task::JoinHandle<()>,
}

/// The client settings every connection of `config` shares.
fn client_config(config: &KafkaBusConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set(
            "socket.timeout.ms",
            millis(config.operation_timeout.max(Duration::from_secs(10))),
        )
        .set("reconnect.backoff.max.ms", "1000");
    if let Some(sasl) = &config.sasl {
        let protocol = if sasl.tls {
            "SASL_SSL"
        } else {
            "SASL_PLAINTEXT"
        };
        client
            .set("security.protocol", protocol)
            .set("sasl.mechanisms", &sasl.mechanism)
            .set("sasl.username", &sasl.username)
            .set("sasl.password", &sasl.password);
    }
    client
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

impl KafkaBus {
    /// Connects to the brokers of `config` (validated first): creates the topic when it is
    /// missing (if [`KafkaBusConfig::create_topic`]), reads its partition count, and starts
    /// the consumer. Unreachable brokers are a retryable error saying so.
    pub async fn connect(config: KafkaBusConfig) -> Result<Self> {
        config.validate()?;
        if config.create_topic {
            create_topic(&config).await?;
        }
        let inbox = Inbox::new("kafka", config.subscription_capacity);
        let watch = Watch::new(inbox.clone());
        // A group id the consumer never joins (librdkafka wants one for manual assignment).
        let group = format!("realtime-bus-{:016x}", rand_id());
        let consumer: StreamConsumer<Watch> = client_config(&config)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "error")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", "100")
            .create_with_context(watch.clone())
            .map_err(failed("connect", None))?;
        let partitions = partition_count(&consumer, &config).await?;
        let producer: FutureProducer<Watch> = client_config(&config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", millis(config.send_timeout))
            .create_with_context(watch.clone())
            .map_err(failed("connect", None))?;
        let link = Arc::new(Link::new(
            consumer,
            watch,
            config.topic.clone(),
            partitions,
            config.operation_timeout,
        ));
        let reader = tokio::spawn(link::read(link.clone()));
        let watchdog = tokio::spawn(link::watchdog(
            Arc::downgrade(&link),
            config.health_interval,
        ));
        let driver = KafkaDriver {
            config,
            producer,
            link,
            reader,
            watchdog,
        };
        Ok(KafkaBus {
            bus: DriverBus::new(driver, inbox),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaBusConfig {
        &self.bus.driver().config
    }

    /// The topic's partition count, as the broker reported it at connect.
    pub fn partitions(&self) -> i32 {
        self.bus.driver().link.partitions
    }

    /// The partition `channel`'s events go to.
    pub fn partition_of(&self, channel: &str) -> i32 {
        partition_of(channel, self.partitions())
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

/// Creates the topic; one that exists already is fine.
async fn create_topic(config: &KafkaBusConfig) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = client_config(config)
        .create()
        .map_err(failed("create_topic", None))?;
    let topic = NewTopic::new(
        &config.topic,
        config.partitions,
        TopicReplication::Fixed(config.replication),
    );
    let options = AdminOptions::new().request_timeout(Some(config.operation_timeout));
    let created = tokio::time::timeout(
        config.operation_timeout + Duration::from_secs(1),
        admin.create_topics([&topic], &options),
    )
    .await
    .map_err(|_| timed_out("create_topic", None))?
    .map_err(|error| connect_failed(&config.brokers, error))?;
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                let kind = if code == RDKafkaErrorCode::OperationTimedOut
                    || code == RDKafkaErrorCode::RequestTimedOut
                {
                    BackendErrorKind::Timeout
                } else {
                    BackendErrorKind::Protocol
                };
                return Err(BackendError::new(
                    "kafka",
                    kind,
                    format!("kafka create_topic {topic:?} failed: {code}"),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The topic's partition count from the broker's metadata.
async fn partition_count(consumer: &StreamConsumer<Watch>, config: &KafkaBusConfig) -> Result<i32> {
    let metadata = tokio::task::block_in_place(|| {
        consumer.fetch_metadata(Some(&config.topic), config.operation_timeout)
    })
    .map_err(|error| connect_failed(&config.brokers, error))?;
    let count = metadata
        .topics()
        .iter()
        .find(|topic| topic.name() == config.topic && topic.error().is_none())
        .map_or(0, |topic| topic.partitions().len());
    if count == 0 {
        return Err(BackendError::new(
            "kafka",
            BackendErrorKind::Config,
            format!(
                "the topic {:?} does not exist (create it, or set create_topic)",
                config.topic
            ),
        )
        .into());
    }
    Ok(i32::try_from(count).unwrap_or(i32::MAX))
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
        let partition = partition_of(channel, self.link.partitions);
        let record = FutureRecord::to(&self.config.topic)
            .partition(partition)
            .key(channel)
            .payload(&frame);
        // The queue wait is bounded too: a full local queue is the brokers being away.
        let sent = self.producer.send(record, self.config.send_timeout);
        match tokio::time::timeout(self.config.send_timeout + Duration::from_secs(1), sent).await {
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
        self.link.end_of(0).await.map(drop)
    }

    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        self.watchdog.abort();
        self.reader.abort();
        if let Err(error) = self.link.consumer.unassign() {
            tracing::debug!(%error, "kafka unassign on close failed");
        }
        Ok(())
    }
}

impl Drop for KafkaDriver {
    fn drop(&mut self) {
        self.watchdog.abort();
        self.reader.abort();
    }
}

impl OnDriver for KafkaBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}
