//! What the consumer reports: the watch (its client library's errors, an outage marking the
//! link down) and the reader that hands each message to the inbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Message};
use realtime_core::driver::Inbox;
use realtime_core::metrics as m;

/// What the consumer's client library reports, watched: a broker outage marks the link down.
#[derive(Clone)]
pub(crate) struct Watch(Arc<WatchState>);

pub(crate) struct WatchState {
    down: AtomicBool,
    inbox: Inbox,
}

impl Watch {
    pub(crate) fn new(inbox: Inbox) -> Self {
        Watch(Arc::new(WatchState {
            down: AtomicBool::new(false),
            inbox,
        }))
    }

    /// Whether an outage was seen and not yet recovered from.
    pub(crate) fn is_down(&self) -> bool {
        self.0.down.load(Ordering::Acquire)
    }

    /// The outage is over (new clients read again).
    pub(crate) fn up(&self) {
        self.0.down.store(false, Ordering::Release);
    }

    pub(crate) fn inbox(&self) -> &Inbox {
        &self.0.inbox
    }

    /// Frames may have been lost: the inbox hears it once per outage.
    pub(crate) fn mark_down(&self, why: &str) {
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
    /// A failed or dropped connection to a broker the consumer reads from may have lost what
    /// was in flight (and the broker may come back without it): an outage. The group
    /// coordinator's connection carries no events (the bus joins no group) and may idle out.
    fn error(&self, error: KafkaError, reason: &str) {
        let transport = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        );
        if transport && !reason.starts_with("GroupCoordinator") {
            self.mark_down(reason);
        } else {
            tracing::debug!(%error, reason, "kafka client error");
        }
    }
}

impl ConsumerContext for Watch {}

/// Hands every message of the assigned partitions to the inbox, its key as the channel.
pub(crate) async fn read(consumer: Arc<StreamConsumer<Watch>>, watch: Watch) {
    loop {
        match consumer.recv().await {
            Ok(message) => {
                let Some(Ok(channel)) = message.key().map(std::str::from_utf8) else {
                    continue;
                };
                watch
                    .0
                    .inbox
                    .frame(channel, message.payload().unwrap_or_default());
            }
            // The partition's log no longer holds the next offset (a broker that came back
            // empty, or retention): what was in between is gone.
            Err(error)
                if matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::AutoOffsetReset
                            | RDKafkaErrorCode::OffsetOutOfRange
                            | RDKafkaErrorCode::UnknownTopicOrPartition
                    )
                ) =>
            {
                watch.mark_down(&error.to_string());
            }
            Err(error) => tracing::debug!(%error, "kafka consumer error"),
        }
    }
}
