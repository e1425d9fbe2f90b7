//! Live repair: reading from the store what the bus lost, at the pace the clients read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::hub::{Hub, State};
use crate::event::Event;
use crate::gap::GapReason;
use crate::metrics as m;
use crate::position::{Epoch, Position};

/// Events read from the store per repair step.
const REPAIR_BATCH: usize = 512;
/// Repairs that find the hole still open before it is reported as a gap.
const MAX_FRUITLESS_REPAIRS: u32 = 3;
/// How often a paced repair looks again whether full clients made room.
const PACE_STEP: Duration = Duration::from_millis(5);
/// The longest wait between two repair reads while the store fails.
const MAX_REPAIR_BACKOFF: Duration = Duration::from_secs(5);

impl Hub {
    /// Reads what is missing from the store until the hole is closed or known to be lost,
    /// delivering at the pace the clients read (see [`Hub::deliver_paced`]).
    pub(super) async fn repair(self: Arc<Self>) {
        let mut fruitless = 0;
        let mut backoff = Duration::from_millis(200);
        loop {
            let step = {
                let mut state = self.state.lock();
                // Held events that delivery has passed meanwhile are done with.
                let next = state.last + 1;
                if state
                    .pending
                    .first_key_value()
                    .is_some_and(|(&o, _)| o < next)
                {
                    state.pending = state.pending.split_off(&next);
                }
                if state.closed || (!state.resync && state.pending.is_empty()) {
                    state.repairing = false;
                    return;
                }
                if !state.resync
                    && state
                        .pending
                        .first_key_value()
                        .is_some_and(|(&o, _)| o == next)
                {
                    // No hole before the held events: deliver them, no store read needed.
                    Err(take_contiguous(&mut state))
                } else {
                    state.resync = false;
                    Ok((state.epoch, state.last))
                }
            };
            let (epoch, last) = match step {
                Ok(from) => from,
                Err(run) => {
                    self.deliver_paced(run).await;
                    continue;
                }
            };
            let read = match self
                .store
                .read(&self.name, Position::new(epoch, last), REPAIR_BATCH)
                .await
            {
                Ok(read) => read,
                Err(error) => {
                    // Every channel retries while the store is down: one line per interval
                    // for all of them.
                    static FAILED: crate::throttle::Throttle =
                        crate::throttle::Throttle::new(crate::throttle::WARN_EVERY);
                    if let Some(left_out) = FAILED.admit() {
                        tracing::warn!(channel = %self.name, %error, ?backoff,
                            similar_since_last = left_out, "repair read failed; retrying");
                    }
                    self.state.lock().resync = true;
                    // Back off before asking the store again; this is not test synchronisation.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_REPAIR_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_millis(200);
            {
                let mut state = self.state.lock();
                if state.epoch != epoch || state.last != last {
                    // Live delivery moved on meanwhile; look again from the new baseline.
                    if !read.events.is_empty() || read.gap.is_some() {
                        state.resync = true;
                    }
                    continue;
                }
                match read.gap {
                    None | Some(GapReason::Limit) => {
                        if state.epoch == Epoch::NONE {
                            // Read from before any history: the events start the channel's one.
                            state.epoch = read.head.epoch;
                        }
                        if read.gap.is_some() {
                            state.resync = true;
                        }
                    }
                    Some(reason) => {
                        self.signal_gap(&mut state, reason, read.head);
                        continue;
                    }
                }
            }
            self.deliver_paced(read.events).await;
            let mut state = self.state.lock();
            let next = state.last + 1;
            let hole = state
                .pending
                .first_key_value()
                .is_some_and(|(&o, _)| o > next);
            fruitless = if state.last == last && hole {
                fruitless + 1
            } else {
                0
            };
            if fruitless >= MAX_FRUITLESS_REPAIRS {
                // The bus has events the store cannot give: report and move on.
                let first = state.pending.keys().next().copied().unwrap_or(next);
                let head = Position::new(state.epoch, first - 1);
                self.signal_gap(&mut state, GapReason::Trimmed, head);
                fruitless = 0;
            }
        }
    }

    /// Delivers `events` in order, as fast as the clients read: while a client that takes the
    /// next event has a full queue, waits for it to make room, so a repair of a long hole does
    /// not cut clients that keep up. Each client may hold a repair back for `repair_patience`
    /// in all; after that it is waited for no more, and the delivery that follows closes it if
    /// it is still full. Clients that skip events when full ([`SlowConsumer::SkipWithGap`](crate::SlowConsumer::SkipWithGap)) are never
    /// waited for.
    async fn deliver_paced(&self, events: Vec<Event>) {
        let mut events = events.into_iter().peekable();
        // Time each client has held this repair back, by client identity.
        let mut held: HashMap<usize, Duration> = HashMap::new();
        let patience = self.repair_patience;
        loop {
            let waiting_on = {
                let mut state = self.state.lock();
                if state.closed {
                    return;
                }
                let mut waiting_on = Vec::new();
                while let Some(event) = events.peek() {
                    if event.id.epoch != state.epoch || event.id.offset <= state.last {
                        events.next();
                        continue;
                    }
                    if event.id.offset != state.last + 1 {
                        return;
                    }
                    waiting_on.extend(
                        state
                            .clients
                            .iter()
                            .filter(|(_, c)| c.route.accepts(event) && c.holds_back())
                            .map(|(_, c)| Arc::as_ptr(c) as usize)
                            .filter(|id| held.get(id).is_none_or(|t| *t < patience)),
                    );
                    if !waiting_on.is_empty() {
                        break;
                    }
                    if let Some(event) = events.next() {
                        self.deliver(&mut state, event);
                    }
                }
                if events.peek().is_none() {
                    return;
                }
                waiting_on
            };
            metrics::counter!(m::REPAIR_WAITS).increment(1);
            let started = Instant::now();
            // The pace of a repair that waits for readers, not a synchronisation.
            tokio::time::sleep(PACE_STEP).await;
            let waited = started.elapsed();
            for id in waiting_on {
                *held.entry(id).or_default() += waited;
            }
        }
    }
}

/// Removes the held events that directly follow the last delivered one.
fn take_contiguous(state: &mut State) -> Vec<Event> {
    let mut next = state.last + 1;
    let mut run = Vec::new();
    while let Some(entry) = state.pending.first_entry() {
        if *entry.key() != next {
            break;
        }
        run.push(entry.remove());
        next += 1;
    }
    run
}
