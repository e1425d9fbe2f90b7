//! The consumer side: partitions assigned by hand as channels come and go, the reader that
//! hands frames to the inbox, and the watchdog that brings the link back after the brokers
//! went away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use realtime_core::driver::Inbox;
use realtime_core::metrics as m;
use realtime_core::{BackendError, Result};

use crate::error::{failed, timed_out};

/// What the client library reports, watched: a broker outage marks the link down.
#[derive(Clone)]
pub(crate) struct Watch(Arc<LinkState>);

pub(crate) struct LinkState {
    down: AtomicBool,
    inbox: Inbox,
}

impl Watch {
    pub(crate) fn new(inbox: Inbox) -> Self {
        Watch(Arc::new(LinkState {
            down: AtomicBool::new(false),
            inbox,
        }))
    }

    /// Frames may have been lost: the inbox hears it once per outage.
    fn mark_down(&self, why: &str) {
        if !self.0.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                why,
                "kafka brokers unreachable; the bus repairs when they are back"
            );
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "kafka").set(0.0);
            self.0.inbox.connection_lost();
        }
    }
}

impl ClientContext for Watch {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.mark_down(reason);
        } else {
            tracing::debug!(%error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for Watch {}

/// The consumer and the partitions it reads.
pub(crate) struct Link {
    pub(crate) consumer: StreamConsumer<Watch>,
    pub(crate) watch: Watch,
    pub(crate) topic: String,
    /// Partitions of the topic, as the broker reported them at connect.
    pub(crate) partitions: i32,
    pub(crate) timeout: Duration,
    /// Local channels per assigned partition.
    assigned: Mutex<HashMap<i32, usize>>,
}

/// The partition of `channel` among `partitions`: FNV-1a of its name, so every instance
/// (and every version of this crate) agrees.
pub(crate) fn partition_of(channel: &str, partitions: i32) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in channel.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % partitions.max(1) as u32) as i32
}

impl Link {
    pub(crate) fn new(
        consumer: StreamConsumer<Watch>,
        watch: Watch,
        topic: String,
        partitions: i32,
        timeout: Duration,
    ) -> Self {
        Link {
            consumer,
            watch,
            topic,
            partitions,
            timeout,
            assigned: Mutex::new(HashMap::new()),
        }
    }

    /// The partition's end (the offset the next event will get), asked of the broker.
    pub(crate) async fn end_of(self: &Arc<Self>, partition: i32) -> Result<i64> {
        let link = self.clone();
        let asked = tokio::task::spawn_blocking(move || {
            link.consumer
                .fetch_watermarks(&link.topic, partition, link.timeout)
        });
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), asked).await {
            Ok(Ok(Ok((_, high)))) => Ok(high),
            Ok(Ok(Err(error))) => Err(failed("watermarks", None)(error).into()),
            Ok(Err(_)) | Err(_) => Err(timed_out("watermarks", None).into()),
        }
    }

    /// Reads `channel`'s partition from its current end if no other local channel does yet.
    pub(crate) async fn add(self: &Arc<Self>, channel: &str) -> Result<()> {
        let partition = partition_of(channel, self.partitions);
        if let Some(count) = self.assigned.lock().get_mut(&partition) {
            *count += 1;
            return Ok(());
        }
        let end = self.end_of(partition).await?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, partition, Offset::Offset(end))
            .map_err(failed("subscribe", Some(channel)))?;
        self.consumer
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
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, partition);
        self.consumer
            .incremental_unassign(&list)
            .map_err(failed("unsubscribe", Some(channel)))?;
        Ok(())
    }

    /// After an outage: every assigned partition is read again from its end now, and only
    /// then is each channel reported resubscribed (its subscriptions are told they were
    /// interrupted, and repair from the store or report a gap).
    async fn recover(self: &Arc<Self>) -> Result<()> {
        let partitions: Vec<i32> = self.assigned.lock().keys().copied().collect();
        let mut list = TopicPartitionList::new();
        for partition in partitions {
            let end = self.end_of(partition).await?;
            list.add_partition_offset(&self.topic, partition, Offset::Offset(end))
                .map_err(failed("resubscribe", None))?;
        }
        // A probe even with nothing assigned: the brokers must answer.
        self.end_of(0).await?;
        self.consumer
            .assign(&list)
            .map_err(failed("resubscribe", None))?;
        self.watch.0.down.store(false, Ordering::Release);
        let inbox = &self.watch.0.inbox;
        for channel in inbox.to_resubscribe(true) {
            inbox.resubscribed(&channel);
        }
        metrics::gauge!(m::BUS_CONNECTED, "backend" => "kafka").set(1.0);
        metrics::counter!(m::BUS_RECONNECTS, "backend" => "kafka").increment(1);
        tracing::info!("kafka brokers back; the bus reads again");
        Ok(())
    }
}

/// Hands every message of the assigned partitions to the inbox, its key as the channel.
pub(crate) async fn read(link: Arc<Link>) {
    loop {
        match link.consumer.recv().await {
            Ok(message) => {
                let Some(Ok(channel)) = message.key().map(std::str::from_utf8) else {
                    continue;
                };
                link.watch
                    .0
                    .inbox
                    .frame(channel, message.payload().unwrap_or_default());
            }
            // The partition's log no longer holds the next offset (a broker that came
            // back empty, or retention): what was in between is gone.
            Err(error)
                if matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::AutoOffsetReset
                            | RDKafkaErrorCode::OffsetOutOfRange
                            | RDKafkaErrorCode::UnknownTopicOrPartition
                            | RDKafkaErrorCode::AllBrokersDown
                    )
                ) =>
            {
                link.watch.mark_down(&error.to_string());
            }
            Err(error) => tracing::debug!(%error, "kafka consumer error"),
        }
    }
}

/// Checks a link that went down every `every`, and recovers it once the brokers answer.
pub(crate) async fn watchdog(link: Weak<Link>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(link) = link.upgrade() else { return };
        if !link.watch.0.down.load(Ordering::Acquire) {
            continue;
        }
        if let Err(error) = link.recover().await {
            let error: BackendError = match error {
                realtime_core::Error::Backend(error) => error,
                other => {
                    tracing::debug!(%other, "kafka recovery failed");
                    continue;
                }
            };
            tracing::debug!(%error, "kafka brokers still unreachable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::partition_of;

    #[test]
    fn a_channel_has_one_partition_everywhere() {
        assert_eq!(partition_of("orders", 12), partition_of("orders", 12));
        // FNV-1a of "a" is 0xe40c292c.
        assert_eq!(partition_of("a", 1000), (0xe40c_292c_u32 % 1000) as i32);
        assert!((0..7).contains(&partition_of("anything", 7)));
    }
}
