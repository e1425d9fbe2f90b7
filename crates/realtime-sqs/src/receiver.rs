//! The instance's background work: receiving from its own queue (and deleting what it
//! handed over), recovering the queue after an outage, and the maintenance round (listing
//! the deployment's queues, marking its own alive, reaping dead instances' queues).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
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
    /// The deployment's queues to send to (this instance's among them).
    pub(crate) peers: RwLock<Vec<String>>,
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

    /// Forgets a queue that is gone (its instance closed, or it was reaped).
    pub(crate) fn forget(&self, url: &str) {
        self.peers.write().retain(|peer| peer != url);
    }

    async fn refresh_peers(&self) {
        match queues::list(&self.client, &self.config).await {
            Ok(mut listed) => {
                let own = self.url.read().clone();
                if !listed.contains(&own) {
                    listed.push(own);
                }
                *self.peers.write() = listed;
            }
            Err(error) => tracing::debug!(%error, "listing the deployment's queues failed"),
        }
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
    loop {
        if let Some(at) = resubscribe_at
            && Instant::now() >= at
        {
            resubscribe_at = None;
            shared.down.store(false, Ordering::Release);
            shared.reconnects.fetch_add(1, Ordering::Relaxed);
            for channel in shared.inbox.to_resubscribe(true) {
                shared.inbox.resubscribed(&channel);
            }
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "sqs").set(1.0);
            metrics::counter!(m::BUS_RECONNECTS, "backend" => "sqs").increment(1);
            tracing::info!("sqs back; the bus receives again");
        }
        let url = shared.url.read().clone();
        // While a resubscription is pending, short polls: it is due soon.
        let wait = if resubscribe_at.is_some() { 0 } else { wait };
        let request = shared
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(config.batch_size)
            .wait_time_seconds(wait);
        let bound = config.wait_time + config.operation_timeout * 2;
        let received = tokio::time::timeout(bound, request.send()).await;
        match received {
            Ok(Ok(output)) => {
                backoff = Duration::from_millis(100);
                let mut handled = Vec::new();
                for message in output.messages() {
                    match message.body().and_then(queues::decode) {
                        Some((channel, frame)) => shared.inbox.frame(&channel, &frame),
                        None => tracing::debug!("a message this bus did not write"),
                    }
                    if let Some(handle) = message.receipt_handle() {
                        handled.push(handle.to_owned());
                    }
                }
                delete(&shared, &url, handled).await;
                if shared.down.load(Ordering::Acquire) && resubscribe_at.is_none() {
                    resubscribe_at = Some(Instant::now() + shared.config.discovery_interval * 2);
                }
            }
            Ok(Err(error)) if queue_missing(&error) => {
                shared.mark_down("the instance's queue is gone");
                resubscribe_at = None;
                match queues::create_queue(&shared.client, config, &shared.name).await {
                    Ok(url) => {
                        tracing::info!(queue = %url, "recreated this instance's queue");
                        *shared.url.write() = url;
                        shared.refresh_peers().await;
                    }
                    Err(error) => tracing::debug!(%error, "recreating the queue failed"),
                }
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

/// Deletes what was handed over, ten at a time.
async fn delete(shared: &Shared, url: &str, handles: Vec<String>) {
    for chunk in handles.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, handle)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
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
        if let Err(error) = deleted {
            tracing::debug!(%error, "deleting received messages failed; SQS redelivers them");
        }
    }
}

/// Every discovery interval: the deployment's queues listed; every heartbeat interval: the
/// instance's queue marked alive and dead instances' queues reaped.
pub(crate) async fn maintain(shared: Arc<Shared>) {
    let mut discovery = tokio::time::interval(shared.config.discovery_interval);
    discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heartbeat = tokio::time::interval(shared.config.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = discovery.tick() => shared.refresh_peers().await,
            _ = heartbeat.tick() => {
                let own = shared.url.read().clone();
                if let Err(error) = queues::heartbeat(&shared.client, &shared.config, &own).await {
                    tracing::debug!(%error, "marking the queue alive failed");
                }
                let peers = shared.peers.read().clone();
                let reaped = queues::reap(&shared.client, &shared.config, &peers, &own).await;
                if reaped > 0 {
                    shared.refresh_peers().await;
                }
            }
        }
    }
}
