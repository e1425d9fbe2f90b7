//! The connections to the brokers: a consumer whose partitions are assigned by hand as
//! channels come and go (its reader hands frames to the inbox), a producer, and the watchdog
//! that replaces both after the brokers went away.
//!
//! An outage tears the pair down and recovery builds a new one: a broker that comes back
//! empty (or another broker in its place) is met by clients with no stale metadata — the old
//! ones would ask it about topic ids it never had. Recovery holds the inbox's lock, as
//! subscribe and unsubscribe do, so the partitions it assigns are exactly those of the
//! channels subscribed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use realtime_core::metrics as m;
use realtime_core::{BackendError, BackendErrorKind, Result};

use crate::config::KafkaBusConfig;
use crate::error::{failed, timed_out};
use crate::hooks::Hooks;
use crate::security::Sasl;
use crate::topic::{client_config, millis, partition_count, partition_of};
use crate::watch::{Consumer, OffThread, Watch, read, serve_events};

/// A producer, closed off the runtime's threads.
pub(crate) type Producer = Arc<OffThread<FutureProducer<Hooks>>>;

/// One generation of clients.
struct Clients {
    consumer: Consumer,
    producer: Producer,
    reader: tokio::task::JoinHandle<()>,
}

/// The bus's connections and the partitions it reads.
pub(crate) struct Link {
    config: KafkaBusConfig,
    watch: Watch,
    /// This instance's consumer group name, never joined (librdkafka wants one for manual
    /// assignment).
    group: String,
    /// Partitions of the topic, as the broker reported them at connect.
    pub(crate) partitions: i32,
    /// `None` while the brokers are away.
    clients: Mutex<Option<Clients>>,
    /// The local channels reading each assigned partition.
    assigned: Mutex<HashMap<i32, HashSet<String>>>,
    reconnects: AtomicU64,
    closed: AtomicBool,
}

/// The brokers are away: what a publish or subscribe meanwhile gets.
fn reconnecting(operation: &'static str) -> realtime_core::Error {
    BackendError::new(
        "kafka",
        BackendErrorKind::Connection,
        format!("kafka {operation} failed: the brokers are unreachable (reconnecting)"),
    )
    .into()
}

impl Link {
    /// The link over a first consumer (the topic exists, with `partitions`).
    pub(crate) fn connect(
        config: KafkaBusConfig,
        watch: Watch,
        group: String,
        partitions: i32,
        consumer: Consumer,
    ) -> Result<Arc<Self>> {
        let producer = new_producer(&config, watch.hooks())?;
        let link = Arc::new(Link {
            config,
            watch,
            group,
            partitions,
            clients: Mutex::new(None),
            assigned: Mutex::new(HashMap::new()),
            reconnects: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let watch = link.watch.clone();
        link.install(consumer, producer, watch);
        Ok(link)
    }

    /// Makes `consumer` (reporting to `watch`, its generation's) and `producer` the link's.
    fn install(&self, consumer: Consumer, producer: Producer, watch: Watch) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let reader = tokio::spawn(read(consumer.clone(), watch));
        let old = self.clients.lock().replace(Clients {
            consumer,
            producer,
            reader,
        });
        if let Some(old) = old {
            old.reader.abort();
        }
    }

    /// Whether the current clients' reader task has ended (it runs as long as they live).
    fn reader_ended(&self) -> bool {
        self.clients
            .lock()
            .as_ref()
            .is_some_and(|clients| clients.reader.is_finished())
    }

    /// Drops the clients (an outage): what they hold of the brokers' state goes with them,
    /// and what they still report is ignored.
    fn tear_down(&self) {
        if let Some(old) = self.clients.lock().take() {
            old.reader.abort();
        }
    }

    pub(crate) fn producer(&self) -> Result<Producer> {
        self.clients
            .lock()
            .as_ref()
            .map(|clients| clients.producer.clone())
            .ok_or_else(|| reconnecting("publish"))
    }

    fn consumer(&self) -> Result<Consumer> {
        self.clients
            .lock()
            .as_ref()
            .map(|clients| clients.consumer.clone())
            .ok_or_else(|| reconnecting("subscribe"))
    }

    pub(crate) fn config(&self) -> &KafkaBusConfig {
        &self.config
    }

    pub(crate) fn is_connected(&self) -> bool {
        !self.watch.is_down()
    }

    pub(crate) fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub(crate) fn assigned_count(&self) -> usize {
        self.assigned.lock().len()
    }

    /// The end of the partition of a subscribed channel (of partition 0 if none): whether the
    /// brokers answer.
    pub(crate) async fn check(&self) -> Result<()> {
        let partition = self.assigned.lock().keys().next().copied().unwrap_or(0);
        end_of(self.consumer()?, &self.config, partition)
            .await
            .map(drop)
    }

    /// Reads `channel`'s partition from its current end if no other local channel does yet.
    /// Runs under the inbox's lock (the driver contract), so never beside `remove` or
    /// recovery.
    pub(crate) async fn add(&self, channel: &str) -> Result<()> {
        let partition = partition_of(channel, self.partitions);
        if let Some(channels) = self.assigned.lock().get_mut(&partition) {
            channels.insert(channel.to_owned());
            return Ok(());
        }
        let consumer = self.consumer()?;
        let end = end_of(consumer.clone(), &self.config, partition).await?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.config.topic, partition, Offset::Offset(end))
            .map_err(failed("subscribe", Some(channel)))?;
        consumer
            .incremental_assign(&list)
            .map_err(failed("subscribe", Some(channel)))?;
        self.assigned
            .lock()
            .entry(partition)
            .or_default()
            .insert(channel.to_owned());
        Ok(())
    }

    /// Stops reading `channel`'s partition when no other local channel needs it; a channel
    /// that never subscribed (its subscribe failed) changes nothing.
    pub(crate) fn remove(&self, channel: &str) -> Result<()> {
        let partition = partition_of(channel, self.partitions);
        {
            let mut assigned = self.assigned.lock();
            let Some(channels) = assigned.get_mut(&partition) else {
                return Ok(());
            };
            if !channels.remove(channel) || !channels.is_empty() {
                return Ok(());
            }
            assigned.remove(&partition);
        }
        // While the brokers are away there is no consumer: recovery assigns what is left.
        let Ok(consumer) = self.consumer() else {
            return Ok(());
        };
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.config.topic, partition);
        consumer
            .incremental_unassign(&list)
            .map_err(failed("unsubscribe", Some(channel)))?;
        Ok(())
    }

    /// After an outage, under the inbox's lock: the topic again (a broker that came back
    /// empty lost it), with the partition count in use; new clients; every assigned
    /// partition read from its end now — and only then each channel reported resubscribed
    /// (its subscriptions are told they were interrupted, and repair from the store or
    /// report a gap).
    async fn recover(&self) -> Result<()> {
        // What the torn-down clients reported says nothing about this attempt.
        self.watch.hooks().forget();
        let watch = self.watch.next_generation();
        let consumer: Consumer = Arc::new(OffThread::new(new_consumer(
            &self.config,
            watch.clone(),
            &self.group,
        )?));
        // A missing topic is created with the partition count in use.
        let mut config = self.config.clone();
        config.partitions = self.partitions;
        let partitions = partition_count(consumer.clone(), &config).await?;
        if partitions != self.partitions {
            // Channels would map to other partitions than on instances started before.
            return Err(BackendError::new(
                "kafka",
                BackendErrorKind::Config,
                format!(
                    "the topic {:?} has {partitions} partitions, not the {} this bus started \
                     with: restart every instance",
                    self.config.topic, self.partitions
                ),
            )
            .into());
        }
        let assigned: Vec<i32> = self.assigned.lock().keys().copied().collect();
        let mut list = TopicPartitionList::new();
        for partition in assigned {
            let end = end_of(consumer.clone(), &self.config, partition).await?;
            list.add_partition_offset(&self.config.topic, partition, Offset::Offset(end))
                .map_err(failed("resubscribe", None))?;
        }
        consumer
            .assign(&list)
            .map_err(failed("resubscribe", None))?;
        let producer = new_producer(&self.config, self.watch.hooks())?;
        // Its first sends must not wait for (or fail on) the topic's metadata.
        warm_up(producer.clone(), &self.config).await?;
        // Counted before the bus says it is connected: whoever sees it back sees the count.
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        self.watch.up();
        self.install(consumer, producer, watch);
        let inbox = self.watch.inbox();
        for channel in inbox.to_resubscribe(true) {
            inbox.resubscribed(&channel);
        }
        metrics::gauge!(m::BUS_CONNECTED, "backend" => "kafka").set(1.0);
        metrics::counter!(m::BUS_RECONNECTS, "backend" => "kafka").increment(1);
        tracing::info!("kafka brokers back; the bus reads again");
        Ok(())
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.tear_down();
    }
}

impl Drop for Link {
    /// A bus dropped without `close`: its reader must not outlive it.
    fn drop(&mut self) {
        self.tear_down();
    }
}

/// A consumer that reads nothing yet, reporting to `watch`.
pub(crate) fn new_consumer(
    config: &KafkaBusConfig,
    watch: Watch,
    group: &str,
) -> Result<StreamConsumer<Watch>> {
    let consumer: StreamConsumer<Watch> = client_config(config)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // A partition whose log lost the next offset is an error here, not a skip.
        .set("auto.offset.reset", "error")
        .set("allow.auto.create.topics", "false")
        .set("fetch.wait.max.ms", millis(config.fetch_wait))
        .create_with_context(watch)
        .map_err(failed("connect", None))?;
    if matches!(config.sasl, Some(Sasl::OAuthBearer(_))) {
        // librdkafka asks for the first token as the client is built, through the
        // consumer's queue, which only the reader polls: without this, the metadata request
        // made before the reader starts would wait for a token that never comes.
        serve_events(&consumer);
    }
    Ok(consumer)
}

/// The producer's own connection errors fail its sends; they say nothing about what the
/// consumer received, so it reports to no watch.
fn new_producer(config: &KafkaBusConfig, hooks: &Hooks) -> Result<Producer> {
    let producer: FutureProducer<Hooks> = client_config(config)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", millis(config.send_timeout))
        .create_with_context(hooks.clone())
        .map_err(failed("connect", None))?;
    Ok(Arc::new(OffThread::new(producer)))
}

/// Has `producer` learn the topic's partitions and leaders (a blocking call, off the
/// runtime's threads).
async fn warm_up(producer: Producer, config: &KafkaBusConfig) -> Result<()> {
    use rdkafka::producer::Producer as _;
    let (topic, timeout) = (config.topic.clone(), config.operation_timeout);
    let asked = tokio::task::spawn_blocking(move || {
        producer.client().fetch_metadata(Some(&topic), timeout)
    });
    match tokio::time::timeout(timeout + Duration::from_secs(1), asked).await {
        Ok(Ok(Ok(_))) => Ok(()),
        Ok(Ok(Err(error))) => Err(failed("metadata", None)(error).into()),
        Ok(Err(_)) | Err(_) => Err(timed_out("metadata", None).into()),
    }
}

/// The partition's end, asked of the broker (a blocking call, off the runtime's threads).
async fn end_of(consumer: Consumer, config: &KafkaBusConfig, partition: i32) -> Result<i64> {
    let (topic, timeout) = (config.topic.clone(), config.operation_timeout);
    let asked =
        tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&topic, partition, timeout));
    match tokio::time::timeout(timeout + Duration::from_secs(1), asked).await {
        Ok(Ok(Ok((_, high)))) => Ok(high),
        Ok(Ok(Err(error))) => Err(failed("watermarks", None)(error).into()),
        Ok(Err(_)) | Err(_) => Err(timed_out("watermarks", None).into()),
    }
}

/// Checks the link every `every`: once it is down, drops its clients, then recovers it as
/// soon as the brokers answer — both under the inbox's lock.
pub(crate) async fn watchdog(link: Weak<Link>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures: u64 = 0;
    loop {
        interval.tick().await;
        let Some(link) = link.upgrade() else { return };
        if link.reader_ended() {
            // Its task ended (a panic in it, e.g. in an application's token provider):
            // nothing reads any more, which is an outage like any other.
            link.watch.down("the consumer's reader ended");
        }
        if link.is_connected() {
            failures = 0;
            continue;
        }
        let inbox = link.watch.inbox().clone();
        let _serialised = inbox.lock().await;
        link.tear_down();
        match link.recover().await {
            Ok(()) => failures = 0,
            Err(error) => {
                failures += 1;
                // The first failure, every 30th, and any that retrying will not mend.
                if failures == 1 || failures.is_multiple_of(30) || !error.is_retryable() {
                    tracing::warn!(%error, failures, "kafka bus still down; retrying");
                } else {
                    tracing::debug!(%error, "kafka brokers still unreachable");
                }
            }
        }
    }
}
