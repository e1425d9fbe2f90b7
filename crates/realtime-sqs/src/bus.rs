//! The SQS bus: a queue per instance, every event sent to every instance's queue.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use futures_util::StreamExt as _;
use parking_lot::RwLock;
use realtime_core::driver::{BusDriver, DriverBus, Inbox, OnDriver};
use realtime_core::{BackendError, BackendErrorKind, Bus, Reach, Result};

use crate::config::SqsBusConfig;
use crate::error::{failed, queue_missing};
use crate::liveness;
use crate::queues::{self, bounded};
use crate::receiver::{self, Shared};

/// Sends of one publish in flight at once.
const SEND_CONCURRENCY: usize = 16;

/// Cross-instance fan-out over Amazon SQS.
///
/// SQS hands each message to one consumer, so instances sharing a queue would each see a
/// fraction of the events. Instead every instance has a FIFO queue of its own
/// (`<queue_prefix><random>.fifo`, created at connect, deleted at close) and a publisher
/// sends each event to every instance's queue, which it learns by listing the deployment's
/// queues every [`discovery_interval`](SqsBusConfig::discovery_interval) (only names of the
/// exact form `<prefix><16 hex>.fifo`; a list older than two intervals is refreshed before a
/// send, or the publish fails, retryable). Why not SNS:
/// an SNS FIFO topic takes at most 100 subscriptions and 256 KiB messages, and a subscription
/// left behind by a crashed instance must be cleaned up before it breaks delivery; sending
/// directly has none of these limits and needs no second service. The cost: one send per
/// instance per event (the sends run concurrently), and every instance receives every event
/// of every channel (filtered locally) — fine for tens of instances; past that, a topic with
/// per-channel filters would pay off. A publish runs at most 16 sends at once, so a large
/// event to many instances holds at most 16 copies of its body.
///
/// A publish (a list renewed if needed, then the sends) takes at most twice
/// [`operation_timeout`](SqsBusConfig::operation_timeout), else a retryable error; one list
/// at a time is asked for, however many publishers find theirs stale.
///
/// Order: a message group per channel, so one publisher's events of a channel arrive in
/// order; the manager orders events of several publishers by their positions. A retried send
/// within five minutes is deduplicated by SQS (the id is the event's position); a redelivered
/// message (a delete that failed) is dropped by the manager.
///
/// Liveness: an instance tags its queue every
/// [`heartbeat_interval`](SqsBusConfig::heartbeat_interval) (a task of its own; failures are
/// logged and counted in `realtime_sqs_heartbeat_failures_total`); a queue untagged for
/// [`reap_after`](SqsBusConfig::reap_after) belongs to an instance that crashed, and an
/// instance that has also seen its tag unchanged for three heartbeat intervals deletes it.
/// Each instance reads the tags of at most 10 queues per interval (tag calls are
/// rate-limited per account), so a deployment of N instances makes about N × 10 tag reads
/// per interval. A new instance's `connect` returns once every publisher's
/// list is sure to hold its queue (2.5 discovery intervals), so a subscription is active when
/// it returns.
///
/// Throughput: an instance receives with one long-polling loop, at most
/// [`batch_size`](SqsBusConfig::batch_size) messages per receive-and-delete round trip —
/// about `batch_size / (2 × round trip)`, some 250 events/s at a 20 ms round trip, for all
/// channels together, since every instance receives every event. An instance that falls
/// behind risks SQS dropping messages it kept waiting for five minutes (the queue's
/// retention); when a received message is four minutes old, every subscription is told it
/// was interrupted (repair from the store, or a gap), logged and counted in
/// `realtime_sqs_backlog_at_risk_total`. A message whose delete fails twice comes back after
/// the 30 s visibility timeout (`realtime_sqs_undeleted_total`) and holds back its channel's
/// group until then; SDK retries of a receive reuse its attempt id, so they do not.
///
/// Outages: a receive that fails, or a queue that is gone (an endpoint that lost its state),
/// marks every subscription interrupted; the queue is recreated, and once every publisher has
/// had time to find it again the subscriptions are told (they repair from the store, or
/// report a gap).
pub struct SqsBus {
    bus: DriverBus<SqsDriver>,
}

struct SqsDriver {
    shared: Arc<Shared>,
    tasks: Tasks,
    closed: AtomicBool,
}

/// The instance's background tasks, stopped when dropped (a `connect` given up half way
/// leaves nothing running).
struct Tasks(parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Tasks {
    /// Stops them and waits until they have.
    async fn stop(&self) {
        let tasks = std::mem::take(&mut *self.0.lock());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in self.0.get_mut().iter() {
            task.abort();
        }
    }
}

impl SqsBus {
    /// Creates this instance's queue at the endpoint of `config` (validated first), learns
    /// the deployment's queues, and returns once every running publisher has had a
    /// discovery round to learn this one. An unreachable endpoint is a retryable error saying
    /// so.
    pub async fn connect(config: SqsBusConfig) -> Result<Self> {
        config.validate()?;
        let client = queues::client(&config)?;
        let name = queues::queue_name(&config, realtime_core::frame::Origin::fresh().0);
        let url = queues::create_queue(&client, &config, &name)
            .await
            .map_err(|error| queues::connect_failed(&config, error))?;
        let inbox = Inbox::new("sqs", config.subscription_capacity);
        let settle = receiver::settle_time(&config);
        let shared = Arc::new(Shared {
            client,
            config,
            inbox: inbox.clone(),
            name,
            url: RwLock::new(url.clone()),
            peers: RwLock::new((vec![url.clone()], tokio::time::Instant::now())),
            listing: tokio::sync::Mutex::new(()),
            down: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
        });
        if let Err(error) = shared.refresh_peers().await {
            // The queue would receive every event until reaped.
            queues::delete_queue(&shared.client, &shared.config, &url).await;
            return Err(queues::connect_failed(&shared.config, error));
        }
        let tasks = Tasks(parking_lot::Mutex::new(vec![
            tokio::spawn(receiver::receive(shared.clone())),
            tokio::spawn(receiver::discover(shared.clone())),
            tokio::spawn(liveness::heartbeat(shared.clone())),
            tokio::spawn(liveness::reap(shared.clone())),
        ]));
        // A publisher sends only with a list younger than `list_max_age`: after that (and a
        // margin) this queue is on every list in use.
        tokio::time::sleep(settle).await;
        metrics::gauge!(realtime_core::metrics::BUS_CONNECTED, "backend" => "sqs").set(1.0);
        Ok(SqsBus {
            bus: DriverBus::new(
                SqsDriver {
                    shared,
                    tasks,
                    closed: AtomicBool::new(false),
                },
                inbox,
            ),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SqsBusConfig {
        &self.bus.driver().shared.config
    }

    /// This instance's queue.
    pub fn queue_url(&self) -> String {
        self.bus.driver().shared.url.read().clone()
    }

    /// The queues a publish goes to (this instance's among them).
    pub fn peer_count(&self) -> usize {
        self.bus.driver().shared.peers.read().0.len()
    }

    /// Whether the last receive succeeded with the queue in place (and any outage before it
    /// was reported).
    pub fn is_connected(&self) -> bool {
        !self.bus.driver().shared.down.load(Ordering::Acquire)
    }

    /// How many times the bus came back after an outage.
    pub fn reconnects(&self) -> u64 {
        self.bus.driver().shared.reconnects.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for SqsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsBus")
            .field("config", self.config())
            .field("queue", &self.queue_url())
            .finish_non_exhaustive()
    }
}

impl SqsDriver {
    /// Sends `frame` to every queue of a fresh list.
    async fn send_to_every_queue(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        let shared = &self.shared;
        let body = queues::encode(channel, &frame)?;
        let (group, dedup) = (queues::group_of(channel), queues::dedup_of(channel, &frame));
        // A list old enough to miss a new instance is refreshed first, or the publish fails.
        let (peers, listed) = shared
            .fresh_peers()
            .await
            .map_err(realtime_core::Error::from)?;
        // At most SEND_CONCURRENCY sends (each holds a copy of the body) at a time: a large
        // event to many instances stays within a few MiB.
        let (body, group, dedup) = (&body, &group, &dedup);
        let sends = peers.iter().map(|url| async move {
            let request = shared
                .client
                .send_message()
                .queue_url(url)
                .message_body(body)
                .message_group_id(group)
                .message_deduplication_id(dedup);
            let sent = tokio::time::timeout(shared.config.operation_timeout, request.send()).await;
            (url, sent)
        });
        // Collected first (each future builds its request only when polled): a lazy map
        // inside the stream trips the compiler's higher-ranked lifetime check.
        let sends: Vec<_> = sends.collect();
        let sent: Vec<_> = futures_util::stream::iter(sends)
            .buffer_unordered(SEND_CONCURRENCY)
            .collect()
            .await;
        let mut failure = None;
        for (url, sent) in sent {
            match sent {
                Ok(Ok(_)) => {}
                // That instance is gone (closed or reaped): not a failure of this publish.
                Ok(Err(error)) if queue_missing(&error) && *url != *shared.url.read() => {
                    shared.forget(url, listed);
                }
                Ok(Err(error)) => failure = Some(failed("send", Some(channel))(error)),
                Err(_) => failure = Some(crate::error::timed_out("send")),
            }
        }
        match failure {
            None => Ok(()),
            Some(error) => Err(error.into()),
        }
    }
}

#[async_trait]
impl BusDriver for SqsDriver {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        // The list (if it must be renewed) and the sends, each bounded: the whole within two
        // operation timeouts.
        let bound = self.shared.config.operation_timeout * 2;
        tokio::time::timeout(bound, self.send_to_every_queue(channel, frame))
            .await
            .unwrap_or_else(|_| Err(crate::error::timed_out("publish").into()))
    }
    async fn subscribe(&self, _channel: &str) -> Result<()> {
        // Every event reaches this instance's queue; the inbox keeps the subscribed channels.
        if self.shared.down.load(Ordering::Acquire) {
            return Err(BackendError::new(
                "sqs",
                BackendErrorKind::Connection,
                "sqs subscribe failed: the endpoint is unreachable or the queue is being recreated",
            )
            .into());
        }
        Ok(())
    }

    async fn unsubscribe(&self, _channel: &str) -> Result<()> {
        Ok(())
    }

    fn reach(&self) -> Reach {
        Reach::Network
    }

    async fn check(&self) -> Result<()> {
        let shared = &self.shared;
        if shared.down.load(Ordering::Acquire) {
            return Err(BackendError::new(
                "sqs",
                BackendErrorKind::Connection,
                "sqs check failed: the endpoint is unreachable or the queue is being recreated",
            )
            .into());
        }
        let url = shared.url.read().clone();
        let request = shared
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn);
        bounded(shared.config.operation_timeout, "check", async {
            request
                .send()
                .await
                .map(drop)
                .map_err(failed("check", None))
        })
        .await
        .map_err(Into::into)
    }

    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        // Stopped before the delete, so no recreation in flight brings the queue back.
        self.tasks.stop().await;
        let shared = &self.shared;
        let url = shared.url.read().clone();
        let request = shared.client.delete_queue().queue_url(url);
        let deleted = bounded(shared.config.operation_timeout, "delete_queue", async {
            request
                .send()
                .await
                .map(drop)
                .map_err(failed("delete_queue", None))
        })
        .await;
        if let Err(error) = deleted {
            tracing::warn!(%error, "this instance's queue was not deleted; the reaper will");
        }
        Ok(())
    }
}

impl OnDriver for SqsBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}
