//! The connection's state as the client reports it: a lost connection marks every
//! subscription interrupted; once the client is back and the server has its subscriptions
//! again, each is told ([`Inbox::resubscribed`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::{Client, Event};
use realtime_core::driver::Inbox;

use crate::barrier::Barrier;
use crate::subject;
use realtime_core::metrics as m;
use tokio::sync::mpsc;

/// What the driver and the event task share.
pub(crate) struct Link {
    pub(crate) inbox: Inbox,
    pub(crate) down: AtomicBool,
    pub(crate) reconnects: AtomicU64,
    pub(crate) operation_timeout: Duration,
    /// Publishes the server refused, recorded by the client's event callback itself (one
    /// hand-over less before a publish looks).
    pub(crate) refusals: crate::refusals::Refusals,
}

impl Link {
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn lost(&self, why: &str) {
        self.inbox.connection_lost();
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(why, "nats connection lost; the client reconnects by itself");
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "nats").set(0.0);
        }
    }

    /// The client is connected again: once a round trip shows the server has every
    /// subscription the client re-sent (they are sent before anything asked after the
    /// reconnect), every channel is told it was interrupted. Under the inbox's lock, so no
    /// subscribe runs meanwhile. `false` if the round trip failed (still down).
    async fn back(&self, client: &Client, barrier: &Barrier) -> bool {
        let _guard = self.inbox.lock().await;
        if !barrier.round_trip(client, self.operation_timeout).await {
            return false;
        }
        // Counted before the bus says it is connected: whoever sees it back sees the count.
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        self.down.store(false, Ordering::Release);
        for channel in self.inbox.to_resubscribe(true) {
            self.inbox.resubscribed(&channel);
        }
        metrics::gauge!(m::BUS_CONNECTED, "backend" => "nats").set(1.0);
        metrics::counter!(m::BUS_RECONNECTS, "backend" => "nats").increment(1);
        tracing::info!("nats connection back; subscriptions told they were interrupted");
        true
    }
}

/// Coalesces the client's slow-consumer reports (one per dropped message): every channel is
/// told at most once per this.
const SLOW_CONSUMER_EVERY: Duration = Duration::from_secs(1);

/// Times the server refused a publish or a subscription (missing permissions).
const PERMISSION_VIOLATIONS: &str = "realtime_nats_permission_violations_total";

/// Handles the client's events in order, for as long as the client lives (the sender is
/// the client's event callback), and reads the connection's state every 500 ms besides:
/// the client drops events when its own event queue is full, so a reconnect is also
/// recognised by the client's count of connections.
pub(crate) async fn watch(
    link: Arc<Link>,
    client: Client,
    barrier: Arc<Barrier>,
    prefix: String,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    let connects = || client.statistics().connects.load(Ordering::Relaxed);
    let mut connects_seen = connects();
    let mut slow_told: Option<Instant> = None;
    loop {
        match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
            Ok(None) | Ok(Some(Event::Closed)) => {
                // The bus aborts this task when it closes: the client ended by itself
                // (async-nats gives up when the server refuses its credentials on a
                // reconnect, e.g. an expired user JWT).
                link.lost("the NATS client stopped");
                tracing::error!(
                    "the NATS client stopped for good (credentials refused on reconnect?); \
                     this bus stays down until the instance restarts"
                );
                break;
            }
            Ok(Some(Event::Disconnected)) => link.lost("disconnected"),
            // The client dropped messages of a subscription that could not keep up; which
            // channel is not reported, so every channel is told (at most once a second).
            Ok(Some(Event::SlowConsumer(_))) => {
                if slow_told.is_none_or(|at| at.elapsed() >= SLOW_CONSUMER_EVERY) {
                    slow_told = Some(Instant::now());
                    tracing::warn!(
                        "nats client dropped messages (slow consumer); subscriptions told \
                         they were interrupted"
                    );
                    link.inbox.connection_lost();
                    for channel in link.inbox.to_resubscribe(true) {
                        link.inbox.resubscribed(&channel);
                    }
                }
            }
            Ok(Some(Event::ServerError(error))) => server_error(&link, &prefix, &error),
            Ok(Some(Event::ClientError(error))) => tracing::warn!(%error, "nats client error"),
            // Connected: handled below, with the state.
            Ok(Some(_)) | Err(_) => {}
        }
        let seen_now = connects();
        let connected = client.connection_state() == State::Connected;
        if (!connected || seen_now != connects_seen) && !link.is_down() {
            link.lost("reconnected (an event the client dropped)");
        }
        if link.is_down() && connected && link.back(&client, &barrier).await {
            connects_seen = seen_now;
        }
    }
}

/// A refused subscription's channel is told it was interrupted (it receives nothing);
/// every refusal is logged and counted. A refused publish fails: its caller finds it in
/// [`Link::refusals`] after the publish's round trip.
fn server_error(link: &Link, prefix: &str, error: &async_nats::ServerError) {
    let text = error.to_string();
    if !text.contains("Permissions Violation") {
        tracing::warn!(%error, "nats server error");
        return;
    }
    metrics::counter!(PERMISSION_VIOLATIONS).increment(1);
    tracing::error!(%error, "the NATS server refused this bus a subject: check its permissions");
    let subject = text
        .split('"')
        .nth(1)
        .filter(|_| text.contains("Subscription"));
    if let Some(channel) = subject.and_then(|subject| subject::decode(prefix, subject)) {
        link.inbox.interrupt(&channel);
    }
}
