//! Per-instance history: events of other instances arrive on the bus, are recorded again in
//! this instance's store under its own positions, and are delivered from there. What the bus
//! loses cannot be read back from anywhere, so it becomes a `lost` gap and a new epoch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::hub::{Hub, State};
use crate::bus::{BusMessage, BusSubscription};
use crate::event::{Event, NewEvent};
use crate::gap::GapReason;
use crate::metrics as m;
use crate::position::{Epoch, Position};

/// How long a hole in another instance's sequence may stay open (its events published
/// concurrently may arrive out of order) before it counts as lost.
pub(super) const HOLE_PATIENCE: Duration = Duration::from_secs(2);
/// Offsets of one other history awaited at most; a longer hole counts as lost at once.
const MAX_MISSING: usize = 1_024;
/// Other histories followed per channel at most; the one heard from longest ago goes first.
const MAX_ORIGINS: usize = 256;
/// This instance's own epochs remembered per channel.
const OWN_EPOCHS: usize = 8;
/// Starts the idempotency key a re-recorded event is appended with; users' keys cannot hold
/// control characters, so the two never meet.
const KEY_PREFIX: char = '\u{1}';

impl State {
    /// Remembers that this instance's store gave the channel `epoch`.
    pub(super) fn note_own_epoch(&mut self, epoch: Epoch) {
        if self.own_epochs.back() == Some(&epoch) || self.own_epochs.contains(&epoch) {
            return;
        }
        if self.own_epochs.len() == OWN_EPOCHS {
            self.own_epochs.pop_front();
        }
        self.own_epochs.push_back(epoch);
    }
}

impl Hub {
    /// The hub's bus reader in per-instance mode.
    pub(super) async fn listen_per_instance(hub: Weak<Hub>, mut subscription: BusSubscription) {
        let mut origins = Origins::default();
        loop {
            let message = match origins.next_deadline() {
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, subscription.recv()).await {
                        Ok(message) => message,
                        Err(_) => {
                            let Some(hub) = hub.upgrade() else { return };
                            if origins.expired(Instant::now()) {
                                hub.lose(&mut origins, "a hole in another instance's sequence")
                                    .await;
                            }
                            continue;
                        }
                    }
                }
                None => subscription.recv().await,
            };
            let Some(message) = message else { return };
            let Some(hub) = hub.upgrade() else { return };
            match message {
                BusMessage::Event(event) => hub.take_foreign(event, &mut origins).await,
                BusMessage::Interrupted => hub.lose(&mut origins, "the bus was interrupted").await,
            }
        }
    }

    /// Records an event from the bus in this instance's store and delivers it, unless it is
    /// this instance's own echo.
    async fn take_foreign(self: &Arc<Self>, event: Event, origins: &mut Origins) {
        if self.state.lock().own_epochs.contains(&event.id.epoch) {
            metrics::counter!(m::BUS_DUPLICATES).increment(1);
            return;
        }
        if !origins.arrive(event.id, Instant::now()) {
            self.lose(
                origins,
                "a hole in another instance's sequence longer than awaited",
            )
            .await;
        }
        let key = format!("{KEY_PREFIX}{}", event.id);
        let mut new = NewEvent::new(event.channel, event.data);
        new.tenant = event.tenant;
        new.subject = event.subject;
        new.event_type = event.event_type;
        new.retry_ms = event.retry_ms;
        new.timestamp = event.timestamp;
        // A redelivered event finds its key and keeps its first position: not delivered twice.
        new.idempotency_key = Some(key);
        match self.store.append(new).await {
            Ok(local) => {
                metrics::counter!(m::RERECORDED).increment(1);
                self.offer(local);
            }
            Err(error) => {
                tracing::warn!(channel = %self.name, %error, "cannot record another instance's event");
                self.lose(origins, "recording another instance's event failed")
                    .await;
            }
        }
    }

    /// Events of other instances were lost: the local history starts a new epoch (so no
    /// resume replays across the hole) and the local clients get a `lost` gap.
    async fn lose(self: &Arc<Self>, origins: &mut Origins, why: &str) {
        tracing::warn!(channel = %self.name, why, "events of other instances lost");
        origins.forgive();
        if let Err(error) = self.store.restart(&self.name).await {
            tracing::warn!(channel = %self.name, %error, "cannot restart the channel's history");
        }
        let mut state = self.state.lock();
        if state.closed || !state.ready {
            return;
        }
        self.signal_gap(&mut state, GapReason::Lost, Position::start(Epoch::NONE));
    }
}

/// What arrived of other instances' sequences, per history (epoch).
#[derive(Default)]
struct Origins {
    origins: HashMap<Epoch, Origin>,
}

struct Origin {
    /// The highest offset seen.
    high: u64,
    /// Offsets below `high` not seen yet, with when they were found missing (which grows
    /// with the offset, so the first entry is the oldest).
    missing: BTreeMap<u64, Instant>,
    heard: Instant,
}

impl Origins {
    /// Notes an arriving position; `false` when it opens a hole too long to await.
    fn arrive(&mut self, id: Position, now: Instant) -> bool {
        if !self.origins.contains_key(&id.epoch) && self.origins.len() >= MAX_ORIGINS {
            let oldest = self
                .origins
                .iter()
                .min_by_key(|(_, o)| o.heard)
                .map(|(epoch, _)| *epoch);
            if let Some(oldest) = oldest {
                self.origins.remove(&oldest);
            }
        }
        let origin = self.origins.entry(id.epoch).or_insert(Origin {
            // The first event heard of a history: what came before it is not expected.
            high: id.offset.saturating_sub(1),
            missing: BTreeMap::new(),
            heard: now,
        });
        origin.heard = now;
        if id.offset <= origin.high {
            // Late (or a copy, which the store's key check turns away).
            origin.missing.remove(&id.offset);
            return true;
        }
        let hole = id.offset - origin.high - 1;
        origin.high = id.offset;
        if origin.missing.len() as u64 + hole > MAX_MISSING as u64 {
            origin.missing.clear();
            return false;
        }
        for offset in id.offset - hole..id.offset {
            origin.missing.insert(offset, now);
        }
        true
    }

    /// When the oldest open hole runs out of patience.
    fn next_deadline(&self) -> Option<Instant> {
        self.origins
            .values()
            .filter_map(|o| o.missing.first_key_value().map(|(_, at)| *at))
            .min()
            .map(|at| at + HOLE_PATIENCE)
    }

    /// Whether a hole has waited past its patience.
    fn expired(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|deadline| deadline <= now)
    }

    /// Stops awaiting every hole (a gap covers them).
    fn forgive(&mut self) {
        for origin in self.origins.values_mut() {
            origin.missing.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> Position {
        Position::new(Epoch(7), offset)
    }

    #[test]
    fn holes_open_close_and_expire() {
        let start = Instant::now();
        let mut origins = Origins::default();
        assert!(origins.arrive(at(5), start), "a first event opens no hole");
        assert_eq!(origins.next_deadline(), None);
        assert!(origins.arrive(at(8), start));
        assert_eq!(origins.next_deadline(), Some(start + HOLE_PATIENCE));
        assert!(origins.arrive(at(6), start));
        assert!(origins.arrive(at(7), start));
        assert_eq!(origins.next_deadline(), None, "late events close the hole");
        assert!(origins.arrive(at(10), start));
        assert!(!origins.expired(start + HOLE_PATIENCE / 2));
        assert!(origins.expired(start + HOLE_PATIENCE));
        origins.forgive();
        assert_eq!(origins.next_deadline(), None);
    }

    #[test]
    fn a_hole_too_long_to_await_is_lost_at_once() {
        let now = Instant::now();
        let mut origins = Origins::default();
        assert!(origins.arrive(at(1), now));
        assert!(!origins.arrive(at(MAX_MISSING as u64 + 3), now));
        assert_eq!(origins.next_deadline(), None, "nothing left to await");
        assert!(origins.arrive(at(MAX_MISSING as u64 + 4), now));
    }

    #[test]
    fn followed_histories_are_bounded() {
        let now = Instant::now();
        let mut origins = Origins::default();
        for epoch in 1..=(MAX_ORIGINS as u64 + 10) {
            origins.arrive(Position::new(Epoch(epoch), 1), now);
        }
        assert_eq!(origins.origins.len(), MAX_ORIGINS);
    }
}
