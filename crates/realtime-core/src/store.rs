//! The replay store contract.

use async_trait::async_trait;

use crate::bus::Bus;
use crate::error::{Error, Result};
use crate::event::{Event, NewEvent};
use crate::gap::GapReason;
use crate::history::Reach;
use crate::position::{Epoch, Position};

/// What [`Store::read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Contiguous events starting right after the requested position, oldest first, at most
    /// `limit` of them. Empty when `gap` is anything but [`GapReason::Limit`].
    pub events: Vec<Event>,
    /// The channel's newest position when the read happened.
    pub head: Position,
    /// The oldest offset still retained in `head`'s epoch (`head.offset + 1` when none is).
    pub oldest: u64,
    /// `None` when `events` is exactly everything after the position up to `head`.
    pub gap: Option<GapReason>,
}

impl ReadResult {
    /// Whether the read returned every event between the position and the head.
    pub fn is_exact(&self) -> bool {
        self.gap.is_none()
    }

    /// The gap a read after `after` must report, for a channel whose newest position is
    /// `head` and whose oldest retained offset is `oldest`, reading at most `limit` events:
    /// the rule of [`Store::read`], in one place for every store. `None` also when events
    /// follow: read them from `after.offset + 1` (which is `1` for a position in
    /// [`Epoch::NONE`](crate::Epoch::NONE)).
    pub fn gap_for(
        after: Position,
        head: Position,
        oldest: u64,
        limit: usize,
    ) -> Option<GapReason> {
        let after = if after.epoch == Epoch::NONE {
            if after.offset != 0 {
                return Some(GapReason::UnknownPosition);
            }
            Position::start(head.epoch)
        } else {
            after
        };
        if after.epoch != head.epoch {
            Some(GapReason::EpochChanged)
        } else if after.offset > head.offset {
            Some(GapReason::UnknownPosition)
        } else if after.offset + 1 < oldest {
            Some(GapReason::Trimmed)
        } else if head.offset - after.offset > limit as u64 {
            Some(GapReason::Limit)
        } else {
            None
        }
    }
}

/// Keeps each channel's recent history and assigns positions.
///
/// Implementations must be usable as `Arc<dyn Store>` and shared by every instance of a
/// deployment (unless [`History::PerInstance`](crate::History::PerInstance)); positions are
/// only meaningful within one store. Implement it with `#[async_trait::async_trait]`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Appends `event` to its channel and returns it with its position.
    ///
    /// # Behavior
    /// - The position is assigned atomically with the append: within an epoch, offsets are
    ///   unique and contiguous (1, 2, 3, …) even under concurrent appenders on many instances.
    /// - When the channel has no history (never written, expired, lost), a new epoch is chosen
    ///   that differs from any epoch the channel had before, and offsets restart at 1.
    /// - May trim the oldest events to stay within the store's bounds; never reorders.
    /// - Once this returns `Ok`, [`Store::read`] and [`Store::head`] on any instance see the
    ///   event (read-your-writes across instances).
    /// - With an [`idempotency_key`](NewEvent::idempotency_key) that an event of the channel
    ///   still retained in the current epoch was appended with, appends nothing and returns
    ///   `event` at that event's position (a publish retried after a lost answer keeps its
    ///   first id). Keys are remembered as long as their events are retained.
    /// - After [`Store::close`], returns [`Error::Closed`](crate::Error::Closed).
    async fn append(&self, event: NewEvent) -> Result<Event>;

    /// Reads up to `limit` events of `channel` strictly after `after`.
    ///
    /// # Behavior
    /// - Seeks to `after`; the cost does not grow with the length of the history.
    /// - The gap is decided by [`ReadResult::gap_for`]:
    /// - `after` in [`Epoch::NONE`] (offset 0) reads from the first event of whatever history
    ///   the channel has, as if `after` were offset 0 of its epoch.
    /// - `after.epoch` differs from the channel's epoch → no events, gap
    ///   [`GapReason::EpochChanged`].
    /// - `after.offset` beyond the head → no events, gap [`GapReason::UnknownPosition`].
    /// - the event at `after.offset + 1` is no longer retained → no events, gap
    ///   [`GapReason::Trimmed`].
    /// - more than `limit` events follow `after` → the first `limit` of them, gap
    ///   [`GapReason::Limit`] (a caller may page on with the last one's position).
    /// - otherwise all events up to the head, no gap. `after == head` gives none, no gap.
    /// - A channel with no history (never written, expired, lost) has the head
    ///   `Position::start(Epoch::NONE)`. Reading or asking for the head of such a channel
    ///   stores nothing: subscribers alone never create state in the store.
    async fn read(&self, channel: &str, after: Position, limit: usize) -> Result<ReadResult>;

    /// The channel's newest position.
    ///
    /// # Behavior
    /// `Position::start(Epoch::NONE)` for a channel without history, which this call does not
    /// create; otherwise the position of the newest appended event.
    async fn head(&self, channel: &str) -> Result<Position>;

    /// Which processes see this store's data: what
    /// [`ManagerBuilder::build`](crate::ManagerBuilder::build) checks the
    /// [`History`](crate::History) mode against.
    ///
    /// # Behavior
    /// [`Reach::Network`] when instances in other processes reach the same data;
    /// [`Reach::Process`] for a store that lives in this process. A wrapper answers as the
    /// store it wraps.
    fn reach(&self) -> Reach;

    /// Drops `channel`'s history, so that its next append starts a new epoch. Used in
    /// [`History::PerInstance`](crate::History::PerInstance) mode, where an instance's history
    /// is only complete while it listens to the bus without a break.
    ///
    /// # Behavior
    /// - Afterwards the head is `Position::start(Epoch::NONE)`, a read from a position of the
    ///   dropped history reports [`GapReason::EpochChanged`] (or
    ///   [`GapReason::UnknownPosition`]), and its idempotency keys are forgotten.
    /// - A channel without history is left as it is.
    /// - The default refuses with [`Error::InvalidConfig`]: a shared store's history is not
    ///   one instance's to drop.
    async fn restart(&self, channel: &str) -> Result<()> {
        let _ = channel;
        Err(Error::invalid_config(
            "history",
            "this store cannot restart a channel's history (per-instance history needs one \
             that can, such as the InMemoryStore)",
        ))
    }

    /// Whether [`Store::append_and_publish`] hands events to `bus` in the same operation as
    /// the append (one round trip instead of two).
    ///
    /// # Behavior
    /// The default is `false`. A store answers `true` only for a bus on the same server that
    /// it can publish to exactly as `bus.publish` would.
    fn publishes_to(&self, bus: &dyn Bus) -> bool {
        let _ = bus;
        false
    }

    /// Appends `event` and publishes the stored event on `bus`.
    ///
    /// # Behavior
    /// - The same as [`Store::append`] followed by [`Bus::publish`]; the default does exactly
    ///   that, a store for which [`Store::publishes_to`] is `true` does both at once.
    /// - An append failure is returned as is; a publish failure after a successful append is
    ///   [`Error::NotBroadcast`] carrying the stored event.
    async fn append_and_publish(&self, event: NewEvent, bus: &dyn Bus) -> Result<Event> {
        let stored = self.append(event).await?;
        match bus.publish(&stored, crate::frame::Origin::UNKNOWN).await {
            Ok(()) => Ok(stored),
            Err(error) => Err(Error::not_broadcast(stored, error)),
        }
    }

    /// Whether the store can serve right now, for readiness checks
    /// ([`Manager::ready`](crate::Manager::ready)).
    ///
    /// # Behavior
    /// - `Ok` when a request would be served now; otherwise the error a request would get
    ///   (retryable while the server is unreachable), [`Error::Closed`] after
    ///   [`Store::close`].
    /// - Answers within the store's own operation timeout; changes nothing.
    /// - The default answers `Ok`, for a store in this process.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Releases the store's resources.
    ///
    /// # Behavior
    /// Idempotent. Later calls to the other methods return
    /// [`Error::Closed`](crate::Error::Closed).
    async fn close(&self) -> Result<()>;
}
