//! The instance's background work: receiving from its own queue (and deleting what it
//! handed over), recovering the queue after an outage, and listing the deployment's queues.
//! Liveness (marks and the reaper) is in `liveness.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use parking_lot::RwLock;
use realtime_core::driver::Inbox;
use realtime_core::metrics as m;
use tokio::time::Instant;

use crate::config::SqsBusConfig;
use crate::error::{failed, queue_missing};
use crate::queues::{self, bounded};

/// What the instance's tasks and its driver share.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: SqsBusConfig,
    pub(crate) inbox: Inbox,
    /// This instance's queue name and URL.
    pub(crate) name: String,
    pub(crate) url: RwLock<String>,
    /// The deployment's queues to send to (this instance's among them), and when the list
    /// that found them was asked for.
    pub(crate) peers: RwLock<(Vec<String>, Instant)>,
    /// Held while a publisher lists the queues.
    pub(crate) listing: tokio::sync::Mutex<()>,
    pub(crate) down: AtomicBool,
    pub(crate) reconnects: AtomicU64,
}

impl Shared {
    fn mark_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                why,
                "sqs unreachable or the queue is gone; the bus repairs when it is back"
            );
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "sqs").set(0.0);
            self.inbox.connection_lost();
        }
    }

    /// Forgets a queue that is gone (its instance closed, or it was reaped) — unless the
    /// list was renewed since `listed` (the list a failed send used): a newer list that holds
    /// it knows better (the queue may be back).
    pub(crate) fn forget(&self, url: &str, listed: Instant) {
        let mut peers = self.peers.write();
        if peers.1 <= listed {
            peers.0.retain(|peer| peer != url);
        }
    }

    /// Lists the deployment's queues now.
    pub(crate) async fn refresh_peers(
        &self,
    ) -> std::result::Result<(), realtime_core::BackendError> {
        let asked = Instant::now();
        let mut listed = queues::list(&self.client, &self.config).await?;
        let own = self.url.read().clone();
        if !listed.contains(&own) {
            listed.push(own);
        }
        *self.peers.write() = (listed, asked);
        Ok(())
    }

    /// The queues to send to, from a list at most [`SqsBusConfig::list_max_age`] old (listed
    /// again now if it is older): a queue created before that is on it.
    /// One list at a time: concurrent publishers with a stale list wait for the same one.
    pub(crate) async fn fresh_peers(
        &self,
    ) -> std::result::Result<(Vec<String>, Instant), realtime_core::BackendError> {
        let fresh = || {
            let (peers, asked) = &*self.peers.read();
            (asked.elapsed() <= self.config.list_max_age()).then(|| (peers.clone(), *asked))
        };
        if let Some(fresh) = fresh() {
            return Ok(fresh);
        }
        let _listing = self.listing.lock().await;
        if let Some(fresh) = fresh() {
            return Ok(fresh);
        }
        self.refresh_peers().await?;
        let (peers, asked) = &*self.peers.read();
        Ok((peers.clone(), *asked))
    }
}

/// Receives from the instance's queue for as long as the bus lives: each message to the
/// inbox, then deleted (a delete that fails lets SQS redeliver it; the manager drops the
/// copy). After an outage — the endpoint unreachable, or the queue gone — it recreates the
/// queue and, once every publisher has had a discovery round to find it, tells every
/// subscription it was interrupted.
pub(crate) async fn receive(shared: Arc<Shared>) {
    let config = &shared.config;
    let wait = i32::try_from(config.wait_time.as_secs()).unwrap_or(20);
    let mut backoff = Duration::from_millis(100);
    // Set after an outage: when the queue is known to every publisher again.
    let mut resubscribe_at: Option<Instant> = None;
    // The newest send time (SQS's clock) of an at-risk message the subscriptions were told of.
    let mut told_through: u64 = 0;
    // The same id until a receive succeeds: a receive retried after a lost answer gets the
    // same messages back instead of leaving them invisible for the visibility timeout.
    let mut attempt: u64 = 1;
    loop {
        if let Some(at) = resubscribe_at
            && Instant::now() >= at
        {
            resubscribe_at = None;
            // Counted before the bus says it is connected: whoever sees it back sees the count.
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
            shared.down.store(false, Ordering::Release);
            for channel in shared.inbox.to_resubscribe(true) {
                shared.inbox.resubscribed(&channel);
            }
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "sqs").set(1.0);
            metrics::counter!(m::BUS_RECONNECTS, "backend" => "sqs").increment(1);
            tracing::info!("sqs back; the bus receives again");
        }
        let url = shared.url.read().clone();
        // While a resubscription is pending, 1 s polls: it is due soon.
        let wait = if resubscribe_at.is_some() { 1 } else { wait };
        let request = shared
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(config.batch_size)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_system_attribute_names(
                MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
            )
            .receive_request_attempt_id(format!("{}-{attempt}", shared.name));
        let bound = config.wait_time + config.operation_timeout * 2;
        let received = tokio::time::timeout(bound, request.send()).await;
        match received {
            Ok(Ok(output)) => {
                attempt += 1;
                backoff = Duration::from_millis(100);
                let mut handled = Vec::new();
                // The newest send time of a message received near its expiry.
                let mut at_risk_through = None;
                for message in output.messages() {
                    match message.body().and_then(queues::decode) {
                        Some((channel, frame)) => shared.inbox.frame(&channel, &frame),
                        None => tracing::debug!("a message this bus did not write"),
                    }
                    if let Some(handle) = message.receipt_handle() {
                        handled.push(handle.to_owned());
                    }
                    if let Some(sent) = sent_at(message).filter(|&sent| {
                        // Both on SQS's clock; this instance's if SQS gave no receive time.
                        let received = stamp(
                            message,
                            MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                        )
                        .unwrap_or_else(queues::now_ms);
                        queues::at_risk(sent, received)
                    }) {
                        at_risk_through = at_risk_through.max(Some(sent));
                    }
                }
                delete(&shared, &url, handled).await;
                // Told again for every message at risk sent after the last one told of: a
                // backlog that stays late keeps saying so.
                if let Some(sent) = at_risk_through.filter(|&sent| sent > told_through) {
                    told_through = sent;
                    tell_backlog_at_risk(&shared);
                }
                if shared.down.load(Ordering::Acquire) && resubscribe_at.is_none() {
                    // Every publisher's list is younger than this from then on.
                    resubscribe_at = Some(Instant::now() + settle_time(config));
                }
            }
            Ok(Err(error)) if queue_missing(&error) => {
                shared.mark_down("the instance's queue is gone");
                resubscribe_at = None;
                match queues::create_queue(&shared.client, config, &shared.name).await {
                    Ok(url) => {
                        tracing::info!(queue = %url, "recreated this instance's queue");
                        *shared.url.write() = url;
                        let _ = shared.refresh_peers().await;
                    }
                    // AWS refuses a name for 60 s after its queue was deleted: keep trying.
                    Err(error) => tracing::debug!(%error, "recreating the queue failed"),
                }
                // A back-off between attempts (a new queue may take a moment to serve too).
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Ok(Err(error)) => {
                shared.mark_down(&failed("receive", None)(error).to_string());
                resubscribe_at = None;
                // A back-off between attempts, not a synchronisation.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(_) => {
                shared.mark_down("a receive did not answer in time");
                resubscribe_at = None;
            }
        }
    }
}

/// When SQS says `message` was sent (Unix milliseconds, SQS's clock).
fn sent_at(message: &aws_sdk_sqs::types::Message) -> Option<u64> {
    stamp(message, MessageSystemAttributeName::SentTimestamp)
}

/// A timestamp attribute of `message` (Unix milliseconds).
fn stamp(
    message: &aws_sdk_sqs::types::Message,
    attribute: MessageSystemAttributeName,
) -> Option<u64> {
    message.attributes()?.get(&attribute)?.parse().ok()
}

/// The instance received a message so old that others queued with it may have expired
/// unreceived: every subscription is told it was interrupted (it repairs from the store, or
/// reports a gap), as after an outage. Nothing else marks such a loss.
fn tell_backlog_at_risk(shared: &Shared) {
    tracing::warn!(
        retention_secs = queues::RETENTION_SECS,
        "this instance receives events so late that SQS may have dropped some (they expire \
         after the retention period); subscriptions are told they were interrupted — receive \
         more (fewer channels per instance, more instances) or publish less"
    );
    metrics::counter!(BACKLOG_AT_RISK).increment(1);
    shared.inbox.connection_lost();
    for channel in shared.inbox.to_resubscribe(true) {
        shared.inbox.resubscribed(&channel);
    }
}

/// Times an instance received events so late that SQS may have dropped others.
const BACKLOG_AT_RISK: &str = "realtime_sqs_backlog_at_risk_total";

/// Times a received message could not be deleted even on a second try.
const UNDELETED: &str = "realtime_sqs_undeleted_total";

/// Deletes what was handed over, ten at a time. An entry SQS refuses is tried once more: a
/// message left undeleted comes back after the visibility timeout (the manager drops the
/// copy), and until then holds back every later event of its channel's group.
async fn delete(shared: &Shared, url: &str, handles: Vec<String>) {
    for chunk in handles.chunks(10) {
        let mut pending: Vec<&String> = chunk.iter().collect();
        for try_number in 1..=2 {
            let failed_ids = delete_batch(shared, url, &pending).await;
            pending = failed_ids.into_iter().map(|i| pending[i]).collect();
            if pending.is_empty() {
                break;
            }
            if try_number == 2 {
                tracing::warn!(
                    count = pending.len(),
                    "received messages could not be deleted; SQS redelivers them after the \
                     visibility timeout, and their channels wait until then"
                );
                metrics::counter!(UNDELETED).increment(pending.len() as u64);
            }
        }
    }
}

/// One batch delete of `handles`: the indexes of those not deleted.
async fn delete_batch(shared: &Shared, url: &str, handles: &[&String]) -> Vec<usize> {
    let entries: Vec<DeleteMessageBatchRequestEntry> = handles
        .iter()
        .enumerate()
        .filter_map(|(i, handle)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(*handle)
                .build()
                .ok()
        })
        .collect();
    let request = shared
        .client
        .delete_message_batch()
        .queue_url(url)
        .set_entries(Some(entries));
    let deleted = bounded(shared.config.operation_timeout, "delete", async {
        request.send().await.map_err(failed("delete", None))
    })
    .await;
    match deleted {
        Ok(output) => output
            .failed()
            .iter()
            .filter_map(|entry| entry.id().parse::<usize>().ok())
            .filter(|&i| i < handles.len())
            .collect(),
        Err(error) => {
            tracing::debug!(%error, "deleting received messages failed");
            (0..handles.len()).collect()
        }
    }
}

/// How long after a queue is (re)created every publisher is sure to send to it: the age a
/// publisher's list may reach, and a margin.
pub(crate) fn settle_time(config: &SqsBusConfig) -> Duration {
    let age = config.list_max_age();
    age + age / 4
}

/// Every discovery interval: the deployment's queues listed (a failure leaves the list to
/// age; publishers refuse a list too old).
pub(crate) async fn discover(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.discovery_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(error) = shared.refresh_peers().await {
            tracing::debug!(%error, "listing the deployment's queues failed");
        }
    }
}
