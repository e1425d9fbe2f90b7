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
        self.control
            .get_or_try_init(|| async {
                let mut subscription = self.bus.subscribe(CONTROL_CHANNEL).await?;
                let weak = Arc::downgrade(self);
                let reader = self.spawner.spawn(async move {
                    while let Some(message) = subscription.recv().await {
                        let Some(inner) = weak.upgrade() else { break };
                        match message {
                            BusMessage::Event(event, _) => inner.on_control(&event.data),
                            // Requests sent while this instance's bus was down are lost: said
                            // in the log (the caller of `disconnect_everywhere` may repeat it).
                            BusMessage::Interrupted => tracing::warn!(
                                "control requests may have been lost while the bus was down"
                            ),
                        }
                    }
                });
                reader.map(Listener).ok_or_else(|| {
                    Error::invalid_config(
                        "runtime",
                        "no Tokio runtime to listen for control requests on",
                    )
                })
            })
            .await
            .map(drop)
    }

    fn on_control(&self, data: &[u8]) {
        let Some(id) = std::str::from_utf8(data)
            .ok()
            .and_then(|text| text.strip_prefix(DISCONNECT))
        else {
            tracing::debug!("an unknown control request");
            return;
        };
        let client = self
            .clients
            .lock()
            .get(id)
            .and_then(std::sync::Weak::upgrade);
        if let Some(client) = client {
            tracing::info!(client = %id, "disconnected by a request from another instance");
            client.close(CloseReason::Disconnected);
        }
    }
}

impl Manager {
    /// Closes the client `client_id` on whichever instance of the deployment it is connected
    /// to (this one included): its stream ends with [`CloseReason::Disconnected`] — e.g. to
    /// end a user's streams at logout. Returns once the request is on the bus (or the client
    /// closed here); it reaches every instance whose bus is connected then. A client id is
    /// unique per instance, so with ids chosen by the application (the same id on two
    /// instances), every such client is closed.
    pub async fn disconnect_everywhere(&self, client_id: &str) -> Result<()> {
        let inner = &self.inner;
        inner.check_open()?;
        crate::routing::validate_routing_key("client_id", client_id)?;
        let _ = self.disconnect(client_id);
        let request = NewEvent::new(
            CONTROL_CHANNEL,
            Bytes::from(format!("{DISCONNECT}{client_id}")),
        )
        // Not stored: a control request has no place in any channel's history.
        .into_event(Position::new(Epoch(1), 1));
        inner.bus.publish(&request, inner.origin).await
    }
}
