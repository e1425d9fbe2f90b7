//! Requests between the instances of a deployment, over the bus: a client disconnected by
//! id wherever it is connected.
//!
//! Every instance with clients listens on a control channel of the bus, [`CONTROL_CHANNEL`]
//! (a name no manager accepts for events, so no client can join it or publish to it). The
//! listener starts with the instance's first subscribe, so an instance with clients always
//! hears a request published after its clients connected.
//!
//! A request must not be lost for an instance whose bus connection broke while it was sent.
//! With a shared store, requests are also kept in the store's history of the control channel,
//! and an instance that was cut off (or sees a hole in their positions) reads what it missed
//! ([`catch_up`](super::catch_up)). Per instance there is nothing to read back: the sender
//! repeats each request a few times over half a minute (the copies close only clients
//! connected before the request), so an instance cut off for less than that still hears it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::shutdown::close_before;
use super::{CloseReason, Inner, Manager};
use crate::History;
use crate::bus::BusMessage;
use crate::error::{Error, Result};
use crate::event::{Event, NewEvent};
use crate::position::{Epoch, Position};

/// The bus channel of control requests (`~` is in no valid channel name).
pub const CONTROL_CHANNEL: &str = "~realtime-control";

/// The task that listens to control requests; it stops with the manager.
#[derive(Debug)]
pub(super) struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The prefix of a disconnect request's data; the client id follows.
const DISCONNECT: &str = "disconnect:";

/// Instances' clocks differ: a request read back (or repeated) closes clients connected up
/// to this long after its timestamp (by this instance's clock) — a catch-up, at least all
/// connected when it began (a sender's clock further behind must not keep a logged-out
/// client open).
pub(super) const CLOCK_SKEW: Duration = Duration::from_secs(10);

/// The prefix of a repeated request (per instance): carried out only for clients connected
/// before the request was first made.
const AGAIN: &str = "again:";

impl Inner {
    /// Starts listening to control requests, once (the first subscribe of this instance
    /// waits for it). Fails as a bus subscription fails: the subscribe that asked is refused,
    /// retryable, and the next one tries again.
    pub(super) async fn ensure_control(self: &Arc<Self>) -> Result<()> {
        let bound = self.config.subscribe_timeout;
        match tokio::time::timeout(bound, self.start_control()).await {
            Ok(started) => started,
            Err(_) => Err(crate::error::BackendError::new(
                "bus",
                crate::error::BackendErrorKind::Timeout,
                format!("listening for control requests took longer than {bound:?}"),
            )
            .into()),
        }
    }

    /// Starts the listener unless it runs (again, if its task ended: a closed bus, a runtime
    /// gone).
    async fn start_control(self: &Arc<Self>) -> Result<()> {
        let mut listener = self.control.lock().await;
        if listener.as_ref().is_some_and(|l| !l.0.is_finished()) {
            return Ok(());
        }
        let mut subscription = self.bus.subscribe(CONTROL_CHANNEL).await?;
        // Where this instance starts hearing requests: a catch-up reads from here.
        let mut last = match self.config.history {
            History::Shared => Some(self.store.head(CONTROL_CHANNEL).await?),
            History::PerInstance => None,
        };
        let weak = Arc::downgrade(self);
        let reader = self.spawner.spawn(async move {
            while let Some(message) = subscription.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                match (message, &mut last) {
                    (BusMessage::Event(event, _), Some(seen)) => {
                        inner.take_stored_control(event, seen).await;
                    }
                    (BusMessage::Event(event, _), None) => inner.on_control(&event),
                    (BusMessage::Interrupted, Some(seen)) => {
                        inner.catch_up(seen, "the bus was interrupted").await;
                    }
                    // Per instance nothing can be read back: the sender repeats each request
                    // for REPEATS, so an instance cut off for less than that still hears it.
                    (BusMessage::Interrupted, None) => tracing::warn!(
                        "control requests sent while this instance's bus was down for longer \
                         than {:?} are lost",
                        REPEATS.iter().sum::<Duration>()
                    ),
                }
            }
        });
        let reader = reader.ok_or_else(|| {
            Error::invalid_config(
                "runtime",
                "no Tokio runtime to listen for control requests on",
            )
        })?;
        *listener = Some(Listener(reader));
        Ok(())
    }

    /// Closes every client connected here under `client_id` ([`CloseReason::Disconnected`])
    /// — only those connected before `before`, if given; how many.
    pub(super) fn close_by_id(&self, client_id: &str, before: Option<SystemTime>) -> usize {
        let clients: Vec<_> = self
            .clients
            .lock()
            .get(client_id)
            .map(|all| all.iter().filter_map(std::sync::Weak::upgrade).collect())
            .unwrap_or_default();
        close_before(clients, before, CloseReason::Disconnected)
    }

    /// A request of the shared store's history, as the bus brings it: carried out if it is
    /// the next after `seen`; otherwise the requests since `seen` are read back from the
    /// store (which covers this one, or shows it is a stale copy).
    async fn take_stored_control(&self, event: Event, seen: &mut Position) {
        let next = event.id.epoch == seen.epoch && event.id.offset == seen.offset + 1;
        let first = seen.epoch == Epoch::NONE && event.id.offset == 1;
        if next || first {
            *seen = event.id;
            self.on_control(&event);
        } else if event.id.epoch != seen.epoch || event.id.offset > seen.offset {
            self.catch_up(seen, "a hole in the control requests").await;
        }
        // Else a copy of one carried out already.
    }

    /// Carries out a request as the bus brought it: for every client with its id, or, for a
    /// repeated copy (per instance), for those connected before it was first made.
    fn on_control(&self, event: &Event) {
        match event.data.strip_prefix(AGAIN.as_bytes()) {
            Some(again) => self.apply_control(again, Some(event.timestamp + CLOCK_SKEW)),
            None => self.apply_control(&event.data, None),
        }
    }

    /// Carries out one request; `before`: only for clients connected before it.
    pub(super) fn apply_control(&self, data: &[u8], before: Option<SystemTime>) {
        let Some(id) = std::str::from_utf8(data)
            .ok()
            .and_then(|text| text.strip_prefix(DISCONNECT))
        else {
            tracing::debug!("an unknown control request");
            return;
        };
        let closed = self.close_by_id(id, before);
        if closed > 0 {
            tracing::debug!(closed, "clients disconnected by a request over the bus");
        }
    }
}

impl Manager {
    /// Closes the clients connected here with `client_id` (several may share an id); their
    /// streams end with [`CloseReason::Disconnected`]. [`Error::UnknownClient`] if none.
    pub fn disconnect(&self, client_id: &str) -> Result<()> {
        match self.inner.close_by_id(client_id, None) {
            0 => Err(Error::UnknownClient(client_id.chars().take(64).collect())),
            _ => Ok(()),
        }
    }

    /// Closes the clients with `client_id` on whichever instances of the deployment they are
    /// connected to (this one included): its stream ends with [`CloseReason::Disconnected`]
    /// — e.g. to end a user's streams at logout. Every client with that id is closed, on
    /// every instance (several may share an id).
    ///
    /// # Behavior
    /// - Returns once the request is on the bus (and, with [`History::Shared`], in the
    ///   store); an error (retryable if the store or bus is) if it could not be sent: never
    ///   dropped without a word. Sending it again is harmless.
    /// - An instance whose bus connection broke while the request was sent still carries it
    ///   out once the bus is back: with a shared store it reads the requests it missed (and
    ///   closes only clients connected before each). Per instance, where there is nothing to
    ///   read back, the request is sent again after 2, 10 and 30 seconds: an instance cut off
    ///   for longer misses it (and logs that it may have).
    pub async fn disconnect_everywhere(&self, client_id: &str) -> Result<()> {
        let inner = &self.inner;
        inner.check_open()?;
        crate::routing::validate_routing_key("client_id", client_id)?;
        let _ = self.disconnect(client_id);
        let request = NewEvent::new(
            CONTROL_CHANNEL,
            Bytes::from(format!("{DISCONNECT}{client_id}")),
        );
        match inner.config.history {
            // Kept in the store too, so an instance whose bus was cut off reads it back.
            History::Shared => inner
                .store
                .append_and_publish(request, inner.bus.as_ref())
                .await
                .map(drop),
            // A position of its own, so no bus takes it for a copy of an earlier request
            // (SQS deduplicates by position for five minutes).
            History::PerInstance => {
                let first = request.clone().into_event(Position::new(Epoch::fresh(), 1));
                inner.bus.publish(&first, inner.origin).await?;
                let (bus, origin) = (inner.bus.clone(), inner.origin);
                let mut again = request;
                again.data = Bytes::from(format!("{AGAIN}{DISCONNECT}{client_id}"));
                let _ = inner.spawner.spawn(async move {
                    for delay in REPEATS {
                        tokio::time::sleep(delay).await;
                        let copy = again.clone().into_event(Position::new(Epoch::fresh(), 1));
                        if let Err(error) = bus.publish(&copy, origin).await {
                            tracing::debug!(%error, "repeating a disconnect request failed");
                        }
                    }
                });
                Ok(())
            }
        }
    }
}

/// Per instance, when a disconnect request is sent again (after the first): an instance
/// whose bus was cut off for less than their sum still hears it.
const REPEATS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(8),
    Duration::from_secs(20),
];
