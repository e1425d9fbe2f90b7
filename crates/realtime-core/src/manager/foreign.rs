//! Per-instance history: events of other instances arrive on the bus, are recorded again in
//! this instance's store under its own positions, and are delivered from there. What the bus
//! loses cannot be read back from anywhere, so it becomes a `lost` gap and a new epoch.
//!
//! On the bus, an event's position is its publisher's own sequence for the channel (see
//! `Inner::bus_copy`): a fresh epoch per sequence, offsets 1, 2, 3, … A hole in it is an
//! event the bus lost (or one still on its way: concurrent publishes may arrive out of order,
//! so a hole is awaited a moment first).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::hub::Hub;
use crate::bus::{BusMessage, BusSubscription};
use crate::event::Event;
use crate::frame::Origin;
use crate::gap::GapReason;
use crate::metrics as m;
use crate::position::{Epoch, Position};

/// How long a hole in another instance's sequence may stay open (its events published
/// concurrently may arrive out of order) before it counts as lost.
pub(super) const HOLE_PATIENCE: Duration = Duration::from_secs(2);
/// Offsets of one sequence awaited at most; a longer hole counts as lost at once.
const MAX_MISSING: usize = 1_024;
/// Sequences followed per channel at most; the one heard from longest ago goes first (its
/// open holes, if any, count as lost).
const MAX_STREAMS: usize = 64;
/// Starts the idempotency key a re-recorded event is appended with; users' keys cannot hold
/// control characters, so the two never meet.
const KEY_PREFIX: char = '\u{1}';

impl Hub {
    /// The hub's bus reader in per-instance mode.
    pub(super) async fn listen_per_instance(hub: Weak<Hub>, mut subscription: BusSubscription) {
        let mut streams = Streams::default();
        loop {
            let message = match streams.next_deadline() {
                Some(deadline) => tokio::time::timeout_at(deadline, subscription.recv()).await,
                None => Ok(subscription.recv().await),
            };
            let Some(hub) = hub.upgrade() else { return };
            match message {
                Ok(None) => return,
                Ok(Some(BusMessage::Event(event, origin))) => {
                    hub.take_foreign(event, origin, &mut streams).await;
                }
                Ok(Some(BusMessage::Interrupted)) => {
                    hub.lose(&mut streams, "the bus was interrupted").await;
                }
                Err(_) => {}
            }
            // Checked after every message too, so a busy bus cannot put a hole off forever.
            if streams.expired(Instant::now()) {
                hub.lose(&mut streams, "a hole in another instance's sequence")
                    .await;
            }
        }
    }

    /// Records an event from the bus in this instance's store and delivers it, unless it is
    /// this instance's own echo.
    async fn take_foreign(self: &Arc<Self>, event: Event, origin: Origin, streams: &mut Streams) {
        if Some(origin) == self.per_instance {
            metrics::counter!(m::BUS_DUPLICATES).increment(1);
            return;
        }
        if !streams.arrive(event.id, Instant::now()) {
            self.lose(
                streams,
                "a hole in another instance's sequence that cannot be awaited",
            )
            .await;
        }
        let key = format!("{KEY_PREFIX}{:x}-{}", origin.0, event.id);
        let mut new = event.into_new();
        // A redelivered event finds its key and keeps its first position: not delivered twice.
        new.idempotency_key = Some(key);
        match self.store.append(new).await {
            Ok(local) => {
                metrics::counter!(m::RERECORDED).increment(1);
                self.offer(local);
            }
            Err(error) => {
                tracing::warn!(channel = %self.name, %error, "cannot record another instance's event");
                self.lose(streams, "recording another instance's event failed")
                    .await;
            }
        }
    }

    /// Events of other instances were lost: the local history starts a new epoch (so no
    /// resume replays across the hole) and the local clients get a `lost` gap.
    async fn lose(self: &Arc<Self>, streams: &mut Streams, why: &str) {
        tracing::warn!(channel = %self.name, why, "events of other instances lost");
        streams.forgive();
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

/// What arrived of other instances' sequences, per sequence (its epoch).
#[derive(Default)]
struct Streams {
    streams: HashMap<Epoch, Stream>,
}

struct Stream {
    /// The highest offset seen.
    high: u64,
    /// Offsets below `high` not seen yet, with when they were found missing (which grows
    /// with the offset, so the first entry is the oldest).
    missing: BTreeMap<u64, Instant>,
    heard: Instant,
}

impl Streams {
    /// Notes an arriving position; `false` when the bus lost events that can no longer be
    /// awaited (a hole too long, or the holes of a sequence let go to make room).
    fn arrive(&mut self, id: Position, now: Instant) -> bool {
        let mut kept = true;
        if !self.streams.contains_key(&id.epoch) && self.streams.len() >= MAX_STREAMS {
            let oldest = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.heard)
                .map(|(epoch, _)| *epoch);
            let evicted = oldest.and_then(|oldest| self.streams.remove(&oldest));
            kept = evicted.is_none_or(|s| s.missing.is_empty());
        }
        let stream = self.streams.entry(id.epoch).or_insert(Stream {
            // The first event heard of a sequence: what came before it is not expected.
            high: id.offset.saturating_sub(1),
            missing: BTreeMap::new(),
            heard: now,
        });
        stream.heard = now;
        if id.offset <= stream.high {
            // Late (or a copy, which the store's key check turns away).
            stream.missing.remove(&id.offset);
            return kept;
        }
        let hole = id.offset - stream.high - 1;
        stream.high = id.offset;
        if stream.missing.len() as u64 + hole > MAX_MISSING as u64 {
            stream.missing.clear();
            return false;
        }
        for offset in id.offset - hole..id.offset {
            stream.missing.insert(offset, now);
        }
        kept
    }

    /// When the oldest open hole runs out of patience.
    fn next_deadline(&self) -> Option<Instant> {
        self.streams
            .values()
            .filter_map(|s| s.missing.first_key_value().map(|(_, at)| *at))
            .min()
            .map(|at| at + HOLE_PATIENCE)
    }

    /// Whether a hole has waited past its patience.
    fn expired(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|deadline| deadline <= now)
    }

    /// Stops awaiting every hole (a gap covers them).
    fn forgive(&mut self) {
        for stream in self.streams.values_mut() {
            stream.missing.clear();
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
        let mut origins = Streams::default();
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
        let mut origins = Streams::default();
        assert!(origins.arrive(at(1), now));
        assert!(!origins.arrive(at(MAX_MISSING as u64 + 3), now));
        assert_eq!(origins.next_deadline(), None, "nothing left to await");
        assert!(origins.arrive(at(MAX_MISSING as u64 + 4), now));
    }

    #[test]
    fn followed_sequences_are_bounded_and_one_let_go_with_holes_is_lost() {
        let now = Instant::now();
        let mut origins = Streams::default();
        for epoch in 1..=(MAX_STREAMS as u64 + 10) {
            assert!(origins.arrive(Position::new(Epoch(epoch), 1), now));
        }
        assert_eq!(origins.streams.len(), MAX_STREAMS);
        let later = now + Duration::from_millis(1);
        for epoch in 100..(100 + MAX_STREAMS as u64) {
            origins.arrive(Position::new(Epoch(epoch), 1), later);
            origins.arrive(Position::new(Epoch(epoch), 3), later);
        }
        assert!(
            !origins.arrive(Position::new(Epoch(999), 1), later),
            "the sequence let go had a hole"
        );
    }
}
