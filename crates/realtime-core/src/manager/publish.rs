//! Publishing: store, deliver locally, hand to the bus (again in the background if refused).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Manager;
use super::request::PublishRequest;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::metrics as m;

/// Background bus hand-offs that may run at once.
const MAX_REBROADCASTS: usize = 1_024;

impl Manager {
    /// Stores an event, then delivers it to the matching local clients and to the bus.
    ///
    /// Returns the stored event with its position. Fails before storing on invalid input, or
    /// when the store fails (nothing was stored then; a retryable error may be retried).
    /// Once the event is stored the publish succeeds: local clients get it at once, and if
    /// the bus refuses it, the hand-off is retried in the background for
    /// [`ManagerConfig::broadcast_retry`] (other instances also repair it from the store as
    /// soon as their next event of the channel, or a bus interruption, shows the hole).
    pub async fn publish(&self, request: PublishRequest) -> Result<Event> {
        let inner = &self.inner;
        inner.check_open()?;
        let new = inner.validate_publish(request)?;
        let one_trip = inner.store.publishes_to(&*inner.bus);
        let stored = if one_trip {
            // One round trip: the store broadcasts as it appends. Local clients get the event
            // from this call, or from the bus echo, whichever comes first.
            inner.store.append_and_publish(new, &*inner.bus).await
        } else {
            match inner.store.append(new).await {
                Ok(event) => {
                    // Local clients need not wait for the bus.
                    inner.offer_local(&event);
                    match inner.bus.publish(&event).await {
                        Ok(()) => Ok(event),
                        Err(error) => Err(Error::not_broadcast(event, error)),
                    }
                }
                Err(error) => Err(error),
            }
        };
        let event = match stored {
            Ok(event) => event,
            Err(Error::NotBroadcast { event, source }) => {
                let event = *event;
                tracing::warn!(channel = %event.channel, id = %event.id, error = %source,
                    "stored event not handed to the bus; retrying in the background");
                self.rebroadcast(event.clone());
                event
            }
            Err(error) => return Err(error),
        };
        metrics::counter!(m::PUBLISHED).increment(1);
        if one_trip {
            inner.offer_local(&event);
        }
        Ok(event)
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
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + inner.config.broadcast_retry;
            let mut delay = Duration::from_millis(50);
            let outcome = loop {
                // A back-off between attempts, not a synchronisation.
                tokio::time::sleep(delay).await;
                if inner.closed.load(Ordering::Acquire) {
                    break "closed";
                }
                match inner.bus.publish(&event).await {
                    Ok(()) => break "sent",
                    Err(_) if tokio::time::Instant::now() + delay < deadline => {
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                    Err(error) => {
                        tracing::warn!(channel = %event.channel, id = %event.id, %error,
                            "gave up handing the event to the bus; other instances repair it from the store");
                        break "gave_up";
                    }
                }
            };
            metrics::counter!(m::REBROADCASTS, "outcome" => outcome).increment(1);
            inner.rebroadcasts.fetch_sub(1, Ordering::AcqRel);
        });
    }
}
