//! Requests between the instances of a deployment, over the bus: a client disconnected by
//! id wherever it is connected.
//!
//! Every instance with clients listens on a control channel of the bus, [`CONTROL_CHANNEL`]
//! (a name no manager accepts for events, so no client can join it or publish to it). The
//! listener starts with the instance's first subscribe, so an instance with clients always
//! hears a request published after its clients connected.

use std::sync::Arc;

use bytes::Bytes;

use super::{CloseReason, Inner, Manager};
use crate::bus::BusMessage;
use crate::error::{Error, Result};
use crate::event::NewEvent;
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
        let weak = Arc::downgrade(self);
        let reader = self.spawner.spawn(async move {
            while let Some(message) = subscription.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                match message {
                    BusMessage::Event(event, _) => inner.on_control(&event.data),
                    // Requests sent while this instance's bus was down are lost: said in the
                    // log (the caller of `disconnect_everywhere` may repeat it).
                    BusMessage::Interrupted => {
                        tracing::warn!("control requests may have been lost while the bus was down")
                    }
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

    /// Closes every client connected here under `client_id` ([`CloseReason::Disconnected`]);
    /// how many.
    pub(super) fn close_by_id(&self, client_id: &str) -> usize {
        let clients: Vec<_> = self
            .clients
            .lock()
            .get(client_id)
            .map(|all| all.iter().filter_map(std::sync::Weak::upgrade).collect())
            .unwrap_or_default();
        for client in &clients {
            client.close(CloseReason::Disconnected);
        }
        clients.len()
    }

    fn on_control(&self, data: &[u8]) {
        let Some(id) = std::str::from_utf8(data)
            .ok()
            .and_then(|text| text.strip_prefix(DISCONNECT))
        else {
            tracing::debug!("an unknown control request");
            return;
        };
        let closed = self.close_by_id(id);
        if closed > 0 {
            tracing::debug!(closed, "clients disconnected by a request over the bus");
        }
    }
}

impl Manager {
    /// Closes the clients connected here with `client_id` (several may share an id); their
    /// streams end with [`CloseReason::Disconnected`]. [`Error::UnknownClient`] if none.
    pub fn disconnect(&self, client_id: &str) -> Result<()> {
        match self.inner.close_by_id(client_id) {
            0 => Err(Error::UnknownClient(client_id.chars().take(64).collect())),
            _ => Ok(()),
        }
    }

    /// Closes the clients with `client_id` on whichever instances of the deployment they are
    /// connected to (this one included): its stream ends with [`CloseReason::Disconnected`] — e.g. to
    /// end a user's streams at logout. Returns once the request is on the bus (or the client
    /// closed here); it reaches every instance whose bus is connected then. Every client
    /// with that id is closed, on every instance (several may share an id).
    pub async fn disconnect_everywhere(&self, client_id: &str) -> Result<()> {
        let inner = &self.inner;
        inner.check_open()?;
        crate::routing::validate_routing_key("client_id", client_id)?;
        let _ = self.disconnect(client_id);
        let request = NewEvent::new(
            CONTROL_CHANNEL,
            Bytes::from(format!("{DISCONNECT}{client_id}")),
        )
        // Not stored: a control request has no place in any channel's history. A position
        // of its own, so no bus takes it for a copy of an earlier request (SQS deduplicates
        // by position for five minutes).
        .into_event(Position::new(Epoch::fresh(), 1));
        inner.bus.publish(&request, inner.origin).await
    }
}
