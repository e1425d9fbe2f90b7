//! Publishing: store, deliver locally, hand to the bus (again in the background if refused).

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::sync::Arc;

use super::request::PublishRequest;
use super::{Inner, Manager};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::history::History;
use crate::metrics as m;
use crate::position::{Epoch, Position};

/// Background bus hand-offs that may run at once.
const MAX_REBROADCASTS: usize = 1_024;
/// Channels whose bus sequence an instance keeps (per-instance history); past this every
/// channel starts a new sequence, which receivers take as a new stream.
const MAX_STREAMS: usize = 100_000;

impl Inner {
    /// What goes on the bus for a stored event. With a shared store, the event itself (`None`:
    /// no copy). With per-instance history, a copy numbered in this instance's own sequence for the
    /// channel (a fresh epoch per sequence, offsets 1, 2, 3, …): receivers find a lost event
    /// by a hole in it, which the store's positions cannot show (they also number events of
    /// other instances recorded here, which never go on the bus).
    pub(super) fn bus_copy(&self, event: &Event) -> Option<Event> {
        if self.config.history != History::PerInstance {
            return None;
        }
        let mut streams = self.streams.lock();
        // The channel's name is copied only when its sequence starts, not on every publish.
        let id = match streams.get_mut(event.channel.as_str()) {
            Some(next) => {
                next.offset += 1;
                *next
            }
            None => {
                if streams.len() >= MAX_STREAMS {
                    streams.clear();
                }
                let first = Position::new(Epoch::fresh(), 1);
                streams.insert(Arc::from(event.channel.as_str()), first);
                first
            }
        };
        drop(streams);
        let mut copy = event.clone();
        copy.id = id;
        Some(copy)
    }
}

impl Manager {
    /// Stores an event, then delivers it to the matching local clients and to the bus.
    ///
    /// Returns the stored event with its position. Fails before storing on invalid input, or
    /// when the store fails (nothing was stored then; a retryable error may be retried).
    /// Once the event is stored the publish succeeds: local clients get it at once, and if
    /// the bus refuses it, the hand-off is retried in the background for
    /// [`ManagerConfig::broadcast_retry`](crate::ManagerConfig::broadcast_retry) (other instances also repair it from the store as
    /// soon as their next event of the channel, or a bus interruption, shows the hole).
    pub async fn publish(&self, request: PublishRequest) -> Result<Event> {
        let inner = &self.inner;
        inner.check_open()?;
        let new = inner.validate_publish(request)?;
        let one_trip = inner.store.publishes_to(&*inner.bus);
        let event = if one_trip {
            // One round trip: the store broadcasts as it appends. Local clients get the event
            // from this call, or from the bus echo, whichever comes first.
            let event = match inner.store.append_and_publish(new, &*inner.bus).await {
                Ok(event) => event,
                Err(Error::NotBroadcast { event, source }) => {
                    self.not_broadcast(&event, &source);
                    self.rebroadcast((*event).clone());
                    *event
                }
                Err(error) => return Err(error),
            };
            inner.offer_local(&event);
            event
        } else {
            let event = inner.store.append(new).await?;
            // Local clients need not wait for the bus.
            inner.offer_local(&event);
            let on_bus = inner.bus_copy(&event);
            let on_bus = on_bus.as_ref().unwrap_or(&event);
            if let Err(error) = inner.bus.publish(on_bus, inner.origin).await {
                self.not_broadcast(&event, &error.into_bus_failure());
                self.rebroadcast(on_bus.clone());
            }
            event
        };
        metrics::counter!(m::PUBLISHED).increment(1);
        Ok(event)
    }

    fn not_broadcast(&self, event: &Event, source: &crate::BackendError) {
        // One per event while the bus is down: a line every 10 s at most (the counter of
        // rebroadcasts counts each).
        if let Some(left_out) = self.inner.bus_refused_warnings.admit() {
            tracing::warn!(channel = %event.channel, id = %event.id, error = %source,
                similar_since_last = left_out,
                "stored event not handed to the bus; retrying in the background");
        }
    }

    /// Hands a stored event to the bus again, with a capped back-off, until it is taken or
    /// `broadcast_retry` has passed. At most [`MAX_REBROADCASTS`] run at once; past that the
    /// event is left to the other instances' repair from the store.
    fn rebroadcast(&self, event: Event) {
        let inner = self.inner.clone();
        let taken = inner
            .rebroadcasts
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_REBROADCASTS).then_some(n + 1)
            });
        if taken.is_err() {
            metrics::counter!(m::REBROADCASTS, "outcome" => "skipped").increment(1);
            return;
        }
        let spawner = inner.spawner.clone();
        let retry = async move {
            let deadline = tokio::time::Instant::now() + inner.config.broadcast_retry;
            let mut delay = Duration::from_millis(50);
            let outcome = loop {
                // A back-off between attempts, not a synchronisation.
                tokio::time::sleep(delay).await;
                if inner.closed.load(Ordering::Acquire) {
                    break "closed";
                }
                match inner.bus.publish(&event, inner.origin).await {
                    Ok(()) => break "sent",
                    Err(_) if tokio::time::Instant::now() + delay < deadline => {
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                    Err(error) => {
                        if let Some(left_out) = inner.bus_gave_up_warnings.admit() {
                            tracing::warn!(channel = %event.channel, id = %event.id, %error,
                                similar_since_last = left_out,
                                "gave up handing the event to the bus; other instances repair it from a shared store or report a gap");
                        }
                        break "gave_up";
                    }
                }
            };
            metrics::counter!(m::REBROADCASTS, "outcome" => outcome).increment(1);
            inner.rebroadcasts.fetch_sub(1, Ordering::AcqRel);
        };
        if spawner.spawn(retry).is_none() {
            metrics::counter!(m::REBROADCASTS, "outcome" => "skipped").increment(1);
            self.inner.rebroadcasts.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
