//! The connection's state as the client reports it: a lost connection marks every
//! subscription interrupted; once the client is back and the server has its subscriptions
//! again, each is told ([`Inbox::resubscribed`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, Event};
use realtime_core::driver::Inbox;

use crate::barrier::Barrier;
use realtime_core::metrics as m;
use tokio::sync::mpsc;

/// What the driver and the event task share.
pub(crate) struct Link {
    pub(crate) inbox: Inbox,
    pub(crate) down: AtomicBool,
    pub(crate) reconnects: AtomicU64,
    pub(crate) operation_timeout: Duration,
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

/// Handles the client's events in order, for as long as the client lives (the sender is
/// the client's event callback).
pub(crate) async fn watch(
    link: Arc<Link>,
    client: Client,
    barrier: Arc<Barrier>,
    mut events: mpsc::UnboundedReceiver<Event>,
) {
    loop {
        // Connected again but not yet recovered (the round trip failed): try again every
        // 500 ms until it works or another event comes.
        let recovering = link.is_down() && client.connection_state() == State::Connected;
        let event = if recovering {
            if link.back(&client, &barrier).await {
                continue;
            }
            match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
                Ok(event) => event,
                Err(_) => continue,
            }
        } else {
            events.recv().await
        };
        let Some(event) = event else { break };
        match event {
            Event::Disconnected => link.lost("disconnected"),
            // The client dropped messages for a subscription that could not keep up: which
            // channel is not reported, so every channel is told.
            Event::SlowConsumer(_) => {
                tracing::warn!(
                    "nats client dropped messages (slow consumer); subscriptions told they \
                     were interrupted"
                );
                link.inbox.connection_lost();
                for channel in link.inbox.to_resubscribe(true) {
                    link.inbox.resubscribed(&channel);
                }
            }
            Event::Closed => break,
            Event::ServerError(error) => tracing::warn!(%error, "nats server error"),
            Event::ClientError(error) => tracing::warn!(%error, "nats client error"),
            // Connected: handled at the top of the loop.
            _ => {}
        }
    }
}
