//! [`SharedEvent`]: one event, encoded once for all of its recipients.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::event::Event;

/// An event shared by every client it is delivered to.
///
/// Cloning is a reference-count increment. The SSE frame and the JSON form are built the
/// first time someone asks for them and then shared, so an event is encoded once however many
/// clients receive it.
#[derive(Debug, Clone)]
pub struct SharedEvent(Arc<SharedInner>);

#[derive(Debug)]
struct SharedInner {
    event: Event,
    /// When this instance took the event for delivery (a client's lag is measured with it).
    taken: tokio::time::Instant,
    sse: OnceLock<Bytes>,
    json: OnceLock<Bytes>,
    message: OnceLock<crate::message::Encoded>,
}

impl SharedEvent {
    /// Wraps `event` for fan-out.
    pub fn new(event: Event) -> Self {
        SharedEvent(Arc::new(SharedInner {
            event,
            taken: tokio::time::Instant::now(),
            sse: OnceLock::new(),
            json: OnceLock::new(),
            message: OnceLock::new(),
        }))
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.0.event
    }

    /// When this instance took the event for delivery.
    pub(crate) fn taken(&self) -> tokio::time::Instant {
        self.0.taken
    }

    /// The SSE frame (`id:`, `event:`, `retry:`, `data:` lines and the blank line), built once.
    pub fn sse_frame(&self) -> Bytes {
        self.0
            .sse
            .get_or_init(|| crate::sse::encode_event(&self.0.event))
            .clone()
    }

    /// The WebSocket `event` message ([`crate::message::encode_event`]), built once.
    pub fn message(&self) -> crate::message::Encoded {
        self.0
            .message
            .get_or_init(|| crate::message::encode_event(&self.0.event))
            .clone()
    }

    /// The JSON form, built once.
    pub fn json(&self) -> Bytes {
        self.0.json.get_or_init(|| self.0.event.to_json()).clone()
    }

    /// Whether two handles share one event.
    pub fn ptr_eq(&self, other: &SharedEvent) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SharedEvent {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.0.event
    }
}

impl From<Event> for SharedEvent {
    fn from(event: Event) -> Self {
        SharedEvent::new(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NewEvent;
    use crate::position::{Epoch, Position};

    #[test]
    fn shared_event_encodes_once() {
        let event = NewEvent::new("c", "x").into_event(Position::new(Epoch(1), 1));
        let shared = SharedEvent::new(event);
        let other = shared.clone();
        let a = shared.sse_frame();
        let b = other.sse_frame();
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the frame must be built once and shared"
        );
    }
}
