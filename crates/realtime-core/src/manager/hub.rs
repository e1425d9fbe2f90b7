//! One channel on one instance: its local clients, its bus subscription, and the ordering
//! state that turns an unreliable bus into an exact sequence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use parking_lot::Mutex;
use slab::Slab;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;

use super::queue::{ClientShared, Message, Pushed};
use super::spawn::Spawner;
use crate::bus::{Bus, BusMessage, BusSubscription};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::frame::Origin;
use crate::gap::{Gap, GapReason};
use crate::metrics as m;
use crate::position::{Epoch, Position};
use crate::shared::SharedEvent;
use crate::store::Store;

/// Out-of-order events held while a hole is repaired; beyond this the newest are let go
/// (the repair reads them from the store anyway).
const MAX_PENDING: usize = 1_024;
/// Clock difference between instances tolerated when a first event is adopted without
/// asking the store; a larger one only costs a store read.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

pub(crate) struct Hub {
    pub(crate) name: Arc<str>,
    /// Where this hub's reader and repairs run.
    spawner: Spawner,
    /// Clients holding (or about to hold) a slot; the hub is released at zero.
    pub(crate) refs: AtomicUsize,
    ready: OnceCell<()>,
    pub(super) state: Mutex<State>,
    pub(super) store: Arc<dyn Store>,
    reader: Mutex<Option<JoinHandle<()>>>,
    pub(super) repair_patience: Duration,
    /// [`History::PerInstance`](crate::History::PerInstance): the store is this instance's
    /// own, and events of other instances are recorded in it again. This instance's origin.
    pub(super) per_instance: Option<Origin>,
    /// When the last client last left.
    pub(super) left_at: Mutex<tokio::time::Instant>,
    /// A linger timer runs for this hub (per-instance mode).
    pub(super) lingering: std::sync::atomic::AtomicBool,
    pub(super) linger_timer: Mutex<Option<tokio::task::AbortHandle>>,
}

pub(super) struct State {
    pub(super) clients: Slab<Arc<ClientShared>>,
    /// The last position delivered to local clients.
    pub(super) epoch: Epoch,
    pub(super) last: u64,
    pub(super) pending: BTreeMap<u64, Event>,
    /// Set once the baseline is read. Before that, events are ignored: the ones appended
    /// before the baseline read are not live, the later ones come again through the bus.
    pub(super) ready: bool,
    /// When the baseline was read: an event of a history that started before it cannot be a
    /// channel's first event for this hub.
    pub(super) baseline_at: std::time::SystemTime,
    pub(super) resync: bool,
    pub(super) repairing: bool,
    pub(super) closed: bool,
    /// An event was offered before the hub was ready.
    pub(super) offered_early: bool,
}

/// Shared history: takes the bus's events and repairs from the store what it lost.
async fn listen(hub: std::sync::Weak<Hub>, mut subscription: BusSubscription) {
    while let Some(message) = subscription.recv().await {
        let Some(hub) = hub.upgrade() else { return };
        match message {
            BusMessage::Event(event, _) => hub.offer(event),
            BusMessage::Interrupted => hub.request_resync(),
        }
    }
}

impl Hub {
    pub(crate) fn new(
        name: Arc<str>,
        store: Arc<dyn Store>,
        repair_patience: Duration,
        per_instance: Option<Origin>,
        spawner: Spawner,
    ) -> Self {
        Hub {
            spawner,
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
                offered_early: false,
            }),
            store,
            reader: Mutex::new(None),
            repair_patience,
            per_instance,
            left_at: Mutex::new(tokio::time::Instant::now()),
            lingering: std::sync::atomic::AtomicBool::new(false),
            linger_timer: Mutex::new(None),
        }
    }

    /// Subscribes to the bus (once per hub) and takes the store's head as the baseline, so
    /// every event after it reaches the local clients in order.
    pub(crate) async fn ensure_ready(self: &Arc<Self>, bus: &Arc<dyn Bus>) -> Result<()> {
        self.ready
            .get_or_try_init(|| async {
                let subscription = bus.subscribe(&self.name).await?;
                if self.per_instance.is_some() {
                    // What the store holds of the channel was recorded while this instance
                    // did not listen: it may miss other instances' events, so it goes.
                    self.store.restart(&self.name).await?;
                }
                let head = self.store.head(&self.name).await?;
                {
                    let mut state = self.state.lock();
                    state.epoch = head.epoch;
                    state.last = head.offset;
                    state.baseline_at = std::time::SystemTime::now();
                    state.ready = true;
                    if std::mem::take(&mut state.offered_early) {
                        state.resync = true;
                        self.start_repair(&mut state);
                    }
                }
                let hub = Arc::downgrade(self);
                let reader = if self.per_instance.is_some() {
                    self.spawner
                        .spawn(Hub::listen_per_instance(hub, subscription))
                } else {
                    self.spawner.spawn(listen(hub, subscription))
                };
                let Some(reader) = reader else {
                    return Err(Error::InvalidConfig {
                        field: "runtime",
                        reason: "no tokio runtime to read the bus on: subscribe from inside \
                                 one, or give one to ManagerBuilder::runtime"
                            .into(),
                    });
                };
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

    /// Whether the hub listens to its channel already (it is not being started).
    pub(super) fn is_listening(&self) -> bool {
        self.ready.initialized()
    }

    /// Whether this hub has handed its clients a position (an event, or a gap's head) they
    /// could resume from.
    pub(super) fn has_history(&self) -> bool {
        let state = self.state.lock();
        state.last > 0 || state.epoch != Epoch::NONE
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
        if let Some(timer) = self.linger_timer.lock().take() {
            timer.abort();
        }
    }

    /// Takes an event from a local publish or the bus, in whatever order they arrive.
    pub(crate) fn offer(self: &Arc<Self>, event: Event) {
        let mut state = self.state.lock();
        if state.closed {
            return;
        }
        if !state.ready {
            // Appended before the baseline was read (so not live for this hub), or after it
            // and offered before the hub was marked ready: the repair after readying finds
            // the latter in the store.
            state.offered_early = true;
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
        if self.spawner.spawn(self.clone().repair()).is_none() {
            // No runtime to repair on: the next event offered starts it again.
            state.repairing = false;
        }
    }

    /// Tells every local client the sequence restarts after `head`, and continues from there.
    pub(super) fn signal_gap(&self, state: &mut State, reason: GapReason, head: Position) {
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

    pub(super) fn drain_pending(&self, state: &mut State) {
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
    pub(super) fn deliver(&self, state: &mut State, event: Event) {
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
