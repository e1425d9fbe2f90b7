//! One channel on one instance: its local clients, its bus subscription, and the ordering
//! state that turns an unreliable bus into an exact sequence.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use parking_lot::Mutex;
use slab::Slab;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::queue::{ClientShared, Message, Pushed};
use crate::bus::{Bus, BusMessage};
use crate::error::Result;
use crate::event::Event;
use crate::gap::{Gap, GapReason};
use crate::metrics as m;
use crate::position::{Epoch, Position};
use crate::shared::SharedEvent;
use crate::store::Store;

/// Out-of-order events held while a hole is repaired; beyond this the newest are let go
/// (the repair reads them from the store anyway).
const MAX_PENDING: usize = 1_024;
/// Events read from the store per repair step.
const REPAIR_BATCH: usize = 512;
/// Clock difference between instances tolerated when a first event is adopted without
/// asking the store; a larger one only costs a store read.
const CLOCK_SLACK: Duration = Duration::from_secs(1);
/// How often a paced repair looks again whether full clients made room.
const PACE_STEP: Duration = Duration::from_millis(5);
/// The longest wait between two repair reads while the store fails.
const MAX_REPAIR_BACKOFF: Duration = Duration::from_secs(5);
/// Repairs that find the hole still open before it is reported as a gap.
const MAX_FRUITLESS_REPAIRS: u32 = 3;

pub(crate) struct Hub {
    pub(crate) name: Arc<str>,
    /// Clients holding (or about to hold) a slot; the hub is released at zero.
    pub(crate) refs: AtomicUsize,
    ready: OnceCell<()>,
    state: Mutex<State>,
    store: Arc<dyn Store>,
    reader: Mutex<Option<JoinHandle<()>>>,
    repair_patience: Duration,
}

struct State {
    clients: Slab<Arc<ClientShared>>,
    /// The last position delivered to local clients.
    epoch: Epoch,
    last: u64,
    pending: BTreeMap<u64, Event>,
    /// Set once the baseline is read. Before that, events are ignored: the ones appended
    /// before the baseline read are not live, the later ones come again through the bus.
    ready: bool,
    /// When the baseline was read: an event of a history that started before it cannot be a
    /// channel's first event for this hub.
    baseline_at: std::time::SystemTime,
    resync: bool,
    repairing: bool,
    closed: bool,
}

impl Hub {
    pub(crate) fn new(name: Arc<str>, store: Arc<dyn Store>, repair_patience: Duration) -> Self {
        Hub {
            name,
            refs: AtomicUsize::new(0),
            ready: OnceCell::new(),
            state: Mutex::new(State {
                clients: Slab::new(),
                epoch: Epoch(0),
                last: 0,
                pending: BTreeMap::new(),
                ready: false,
                baseline_at: std::time::UNIX_EPOCH,
                resync: false,
                repairing: false,
                closed: false,
            }),
            store,
            reader: Mutex::new(None),
            repair_patience,
        }
    }

    /// Subscribes to the bus (once per hub) and takes the store's head as the baseline, so
    /// every event after it reaches the local clients in order.
    pub(crate) async fn ensure_ready(self: &Arc<Self>, bus: &Arc<dyn Bus>) -> Result<()> {
        self.ready
            .get_or_try_init(|| async {
                let mut subscription = bus.subscribe(&self.name).await?;
                let head = self.store.head(&self.name).await?;
                {
                    let mut state = self.state.lock();
                    state.epoch = head.epoch;
                    state.last = head.offset;
                    state.baseline_at = std::time::SystemTime::now();
                    state.ready = true;
                }
                let hub = Arc::downgrade(self);
                let reader = tokio::spawn(async move {
                    while let Some(message) = subscription.recv().await {
                        let Some(hub) = hub.upgrade() else { return };
                        match message {
                            BusMessage::Event(event) => hub.offer(event),
                            BusMessage::Interrupted => hub.request_resync(),
                        }
                    }
                });
                *self.reader.lock() = Some(reader);
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Registers a client; returns its slot and the position delivery stands at, after
    /// which it receives every event.
    pub(crate) fn add_client(&self, client: Arc<ClientShared>) -> (usize, Position) {
        let mut state = self.state.lock();
        let position = Position::new(state.epoch, state.last);
        (state.clients.insert(client), position)
    }

    pub(crate) fn remove_client(&self, slot: usize) {
        self.state.lock().clients.try_remove(slot);
    }

    /// Stops delivery and the bus subscription.
    pub(crate) fn shutdown(&self) {
        self.state.lock().closed = true;
        if let Some(reader) = self.reader.lock().take() {
            reader.abort();
        }
    }

    /// Takes an event from a local publish or the bus, in whatever order they arrive.
    pub(crate) fn offer(self: &Arc<Self>, event: Event) {
        let mut state = self.state.lock();
        if state.closed || !state.ready {
            return;
        }
        if state.epoch == Epoch::NONE
            && event.id.offset == 1
            && event.timestamp
                >= state
                    .baseline_at
                    .checked_sub(CLOCK_SLACK)
                    .unwrap_or(std::time::UNIX_EPOCH)
        {
            // The channel had no history when delivery began: its first event starts one.
            // (An older first event — a late copy from a history already lost — is left to the
            // store to judge, through the repair below.)
            state.epoch = event.id.epoch;
        }
        if event.id.epoch != state.epoch {
            // Either the history was lost and restarted, or this is a stale message from an
            // old epoch; the store decides which.
            state.resync = true;
        } else if event.id.offset <= state.last {
            metrics::counter!(m::BUS_DUPLICATES).increment(1);
            return;
        } else if event.id.offset == state.last + 1 {
            self.deliver(&mut state, event);
            self.drain_pending(&mut state);
            return;
        } else {
            state.pending.insert(event.id.offset, event);
            if state.pending.len() > MAX_PENDING {
                // The store has it: the repair reads it back.
                state.pending.pop_last();
                state.resync = true;
            }
        }
        self.start_repair(&mut state);
    }

    fn request_resync(self: &Arc<Self>) {
        let mut state = self.state.lock();
        state.resync = true;
        self.start_repair(&mut state);
    }

    fn start_repair(self: &Arc<Self>, state: &mut State) {
        if state.repairing || state.closed || !state.ready {
            return;
        }
        state.repairing = true;
        metrics::counter!(m::REPAIRS).increment(1);
        tokio::spawn(self.clone().repair());
    }

    /// Reads what is missing from the store until the hole is closed or known to be lost,
    /// delivering at the pace the clients read (see [`Hub::deliver_paced`]).
    async fn repair(self: Arc<Self>) {
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
                    tracing::warn!(channel = %self.name, %error, ?backoff, "repair read failed; retrying");
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
    /// it is still full. Clients that skip events when full (`drop_on_backpressure`) are never
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

    /// Tells every local client the sequence restarts after `head`, and continues from there.
    fn signal_gap(&self, state: &mut State, reason: GapReason, head: Position) {
        tracing::info!(channel = %self.name, %reason, %head, "live gap");
        metrics::counter!(m::GAPS, "reason" => reason.as_str()).increment(1);
        let gap = Gap {
            channel: self.name.clone(),
            reason,
            head,
        };
        for (_, client) in &state.clients {
            client.push(Message::Gap(gap.clone()));
        }
        state.epoch = head.epoch;
        state.last = head.offset;
        if head.epoch == Epoch::NONE {
            // The history is gone: its late copies are older than this.
            state.baseline_at = std::time::SystemTime::now();
        }
        state
            .pending
            .retain(|&offset, event| event.id.epoch == head.epoch && offset > head.offset);
        self.drain_pending(state);
    }

    fn drain_pending(&self, state: &mut State) {
        while let Some(entry) = state.pending.first_entry() {
            if *entry.key() > state.last + 1 {
                break;
            }
            let event = entry.remove();
            if event.id.offset == state.last + 1 {
                self.deliver(state, event);
            }
        }
    }

    /// Hands one in-order event to every local client its route allows; encodes nothing
    /// per client (the shared event builds its frames once).
    fn deliver(&self, state: &mut State, event: Event) {
        state.last = event.id.offset;
        let event = SharedEvent::new(event);
        let (mut delivered, mut dropped, mut slow) = (0u64, 0u64, 0u64);
        for (_, client) in &state.clients {
            if !client.route.accepts(&event) {
                continue;
            }
            match client.push(Message::Event(event.clone())) {
                Pushed::Queued => delivered += 1,
                Pushed::Dropped => dropped += 1,
                Pushed::ClosedSlow => {
                    slow += 1;
                    tracing::info!(client = %client.id, channel = %self.name, "slow consumer closed");
                }
                Pushed::AlreadyClosed => {}
            }
        }
        metrics::counter!(m::DELIVERED).increment(delivered);
        if dropped > 0 {
            metrics::counter!(m::DROPPED).increment(dropped);
        }
        if slow > 0 {
            metrics::counter!(m::SLOW_CONSUMERS).increment(slow);
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
