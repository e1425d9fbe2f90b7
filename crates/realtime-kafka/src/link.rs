//! The connections to the brokers: a consumer whose partitions are assigned by hand as
//! channels come and go, its reader that hands frames to the inbox, a producer, and the
//! watchdog that replaces both after the brokers went away.
//!
//! An outage tears the pair down and recovery builds a new one: a broker that comes back
//! empty (or another broker in its place) is met by clients with no stale metadata — the old
//! ones would ask it about topic ids it never had.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use realtime_core::metrics as m;
use realtime_core::{BackendError, BackendErrorKind, Result};

use crate::config::KafkaBusConfig;
use crate::error::{failed, timed_out};
use crate::topic::{client_config, create_topic, millis, partition_of};
use crate::watch::{Watch, read};

/// One generation of clients.
struct Clients {
    consumer: Arc<StreamConsumer<Watch>>,
    producer: FutureProducer,
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
    /// Local channels per assigned partition.
    assigned: Mutex<HashMap<i32, usize>>,
    reconnects: AtomicU64,
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
    /// Connects a first generation of clients (the topic exists: see
    /// [`create_topic`]); `partitions` is the topic's count.
    pub(crate) fn connect(
        config: KafkaBusConfig,
        watch: Watch,
        group: String,
        partitions: i32,
        consumer: Arc<StreamConsumer<Watch>>,
    ) -> Result<Arc<Self>> {
        let link = Arc::new(Link {
            config,
            watch,
            group,
            partitions,
            clients: Mutex::new(None),
            assigned: Mutex::new(HashMap::new()),
            reconnects: AtomicU64::new(0),
        });
        let producer = link.new_producer()?;
        link.install(consumer, producer);
        Ok(link)
    }

    /// A consumer that reads nothing yet.
    pub(crate) fn new_consumer(
        config: &KafkaBusConfig,
        watch: Watch,
        group: &str,
    ) -> Result<StreamConsumer<Watch>> {
        client_config(config)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // A partition whose log lost the next offset is an error here, not a skip.
            .set("auto.offset.reset", "error")
            .set("allow.auto.create.topics", "false")
            .set("fetch.wait.max.ms", millis(config.fetch_wait))
            .create_with_context(watch)
            .map_err(|e| failed("connect", None)(e).into())
    }

    /// The producer's own connection errors fail its sends; they say nothing about what the
    /// consumer received, so it reports to no watch.
    fn new_producer(&self) -> Result<FutureProducer> {
        client_config(&self.config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", millis(self.config.send_timeout))
            .create()
            .map_err(|e| failed("connect", None)(e).into())
    }

    fn install(self: &Arc<Self>, consumer: Arc<StreamConsumer<Watch>>, producer: FutureProducer) {
        let reader = tokio::spawn(read(consumer.clone(), self.watch.clone()));
        let old = self.clients.lock().replace(Clients {
            consumer,
            producer,
            reader,
        });
        if let Some(old) = old {
            old.reader.abort();
        }
    }

    /// Drops the clients (an outage): what they hold of the brokers' state goes with them.
    fn tear_down(&self) {
        let Some(old) = self.clients.lock().take() else {
            return;
        };
        old.reader.abort();
        // Closing a consumer waits for its threads: not on a runtime thread.
        tokio::task::spawn_blocking(move || drop(old));
    }

    pub(crate) fn producer(&self) -> Result<FutureProducer> {
        self.clients
            .lock()
            .as_ref()
            .map(|clients| clients.producer.clone())
            .ok_or_else(|| reconnecting("publish"))
    }

    fn consumer(&self) -> Result<Arc<StreamConsumer<Watch>>> {
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

    /// The partition's end (the offset the next event will get), asked of the broker.
    pub(crate) async fn end_of(&self, partition: i32) -> Result<i64> {
        end_of(self.consumer()?, &self.config, partition).await
    }

    /// Reads `channel`'s partition from its current end if no other local channel does yet.
    pub(crate) async fn add(&self, channel: &str) -> Result<()> {
        let partition = partition_of(channel, self.partitions);
        if let Some(count) = self.assigned.lock().get_mut(&partition) {
            *count += 1;
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
        *self.assigned.lock().entry(partition).or_insert(0) += 1;
        Ok(())
    }

    /// Stops reading `channel`'s partition when no other local channel needs it.
    pub(crate) fn remove(&self, channel: &str) -> Result<()> {
        let partition = partition_of(channel, self.partitions);
        let mut assigned = self.assigned.lock();
        let Some(count) = assigned.get_mut(&partition) else {
            return Ok(());
        };
        *count -= 1;
        if *count > 0 {
            return Ok(());
        }
        assigned.remove(&partition);
        drop(assigned);
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

    /// After an outage: the topic again (a broker that came back empty lost it), new
    /// clients, every assigned partition read from its end now — and only then each channel
    /// reported resubscribed (its subscriptions are told they were interrupted, and repair
    /// from the store or report a gap).
    async fn recover(self: &Arc<Self>) -> Result<()> {
        if self.config.create_topic {
            create_topic(&self.config).await?;
        }
        let consumer = Arc::new(Link::new_consumer(
            &self.config,
            self.watch.clone(),
            &self.group,
        )?);
        // Declared before its clone below, so it holds the last reference on an early return.
        let mut guard = OffThread(Some(consumer.clone()));
        // A probe even with nothing assigned: the brokers must answer.
        end_of(consumer.clone(), &self.config, 0).await?;
        let partitions: Vec<i32> = self.assigned.lock().keys().copied().collect();
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            let end = end_of(consumer.clone(), &self.config, partition).await?;
            list.add_partition_offset(&self.config.topic, partition, Offset::Offset(end))
                .map_err(failed("resubscribe", None))?;
        }
        consumer
            .assign(&list)
            .map_err(failed("resubscribe", None))?;
        let producer = self.new_producer()?;
        guard.0 = None;
        // Errors of the probes above (a broker still half up) must not count as a new outage.
        self.watch.up();
        self.install(consumer, producer);
        self.reconnects.fetch_add(1, Ordering::Relaxed);
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
        self.tear_down();
    }
}

impl Drop for Link {
    /// A bus dropped without `close`: its reader must not outlive it.
    fn drop(&mut self) {
        if let Some(clients) = self.clients.get_mut().take() {
            clients.reader.abort();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(clients))),
                Err(_) => drop(clients),
            }
        }
    }
}

/// A consumer that, if dropped before it is installed, is closed off the runtime's threads
/// (closing waits for its threads and the brokers).
struct OffThread(Option<Arc<StreamConsumer<Watch>>>);

impl Drop for OffThread {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            tokio::task::spawn_blocking(move || drop(consumer));
        }
    }
}

/// The partition's end, asked of the broker (a blocking call, off the runtime's threads).
async fn end_of(
    consumer: Arc<StreamConsumer<Watch>>,
    config: &KafkaBusConfig,
    partition: i32,
) -> Result<i64> {
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
/// soon as the brokers answer.
pub(crate) async fn watchdog(link: Weak<Link>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(link) = link.upgrade() else { return };
        if link.is_connected() {
            continue;
        }
        link.tear_down();
        if let Err(error) = link.recover().await {
            tracing::debug!(%error, "kafka brokers still unreachable");
        }
    }
}
