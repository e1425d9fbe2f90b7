//! Releasing a channel when its last local client leaves: at once, or in per-instance mode
//! after [`ManagerConfig::history_linger`](super::ManagerConfig::history_linger), so a client
//! that comes back within it resumes exactly.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::hub::Hub;
use super::{Hubs, Inner};
use crate::metrics as m;

impl Inner {
    /// Drops one reference; the last one removes the hub and its bus subscription, at once
    /// or, in per-instance mode, once it has had no client for the linger.
    pub(super) fn release_hub(&self, hub: &Arc<Hub>) {
        if hub.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        *hub.left_at.lock() = Instant::now();
        let linger = self.config.history_linger;
        // Only a channel with history lingers: a client can only resume from a position it
        // was given, and a channel with none gave none. So a client churning through fresh
        // channels (subscribe, leave, repeat) takes no slot from the channels whose exact
        // resume the slots are for.
        let lingers = hub.per_instance.is_some()
            && !linger.is_zero()
            && !self.closed.load(Ordering::Acquire)
            && hub.has_history();
        if !lingers {
            remove_if_unused(&self.hubs, hub);
        } else if !hub.lingering.swap(true, Ordering::AcqRel) && !self.start_timer(hub, linger) {
            hub.lingering.store(false, Ordering::Release);
            remove_if_unused(&self.hubs, hub);
        }
        // Otherwise the hub's timer, already running, sees the new leaving time.
    }

    /// Starts the hub's one linger timer, which takes a slot (ending another channel's
    /// linger when all are taken); `false` when there is no runtime to time it.
    fn start_timer(&self, hub: &Arc<Hub>, linger: Duration) -> bool {
        let hubs = Arc::downgrade(&self.hubs);
        let slots = self.lingering.clone();
        // The slot is taken by the timer itself: without a runtime no other channel's
        // linger is ended for nothing.
        let Some(timer) = self
            .spawner
            .spawn(linger_then_release(hubs, hub.clone(), linger, slots))
        else {
            return false;
        };
        *hub.linger_timer.lock() = Some(timer.abort_handle());
        true
    }
}

/// The tenant a lingering slot is counted against: the scope of a tenant-scoped channel
/// (`~tenant~channel`); every untenanted channel counts as one more tenant's.
fn tenant_of(channel: &str) -> &str {
    channel
        .strip_prefix('~')
        .and_then(|rest| rest.split_once('~'))
        .map_or("", |(tenant, _)| tenant)
}

/// The lingering slots, counted per tenant. When all are taken, the tenant holding the
/// most gives up its oldest: churn by one tenant ends that tenant's own lingers, never a
/// tenant holding fewer.
pub(super) struct Slots {
    capacity: usize,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// Per tenant, its slots oldest first (by number), each with the signal that ends it.
    tenants: HashMap<Box<str>, BTreeMap<u64, Arc<Notify>>>,
    /// Tenants by how many slots they hold: the one holding the most, found without a scan.
    by_count: BTreeMap<usize, HashSet<Box<str>>>,
    taken: usize,
    next: u64,
}

impl SlotState {
    fn held_by(&self, tenant: &str) -> usize {
        self.tenants.get(tenant).map_or(0, BTreeMap::len)
    }

    /// Moves `tenant` from the bucket of `from` slots to that of `to`.
    fn recount(&mut self, tenant: &str, from: usize, to: usize) {
        if from > 0
            && let Some(bucket) = self.by_count.get_mut(&from)
        {
            bucket.remove(tenant);
            if bucket.is_empty() {
                self.by_count.remove(&from);
            }
        }
        if to > 0 {
            self.by_count.entry(to).or_default().insert(tenant.into());
        }
    }

    /// Removes slot `number` of `tenant`; its end signal if it was there.
    fn remove(&mut self, tenant: &str, number: Option<u64>) -> Option<Arc<Notify>> {
        let held = self.held_by(tenant);
        let slots = self.tenants.get_mut(tenant)?;
        let end = match number {
            Some(number) => slots.remove(&number)?,
            None => slots.pop_first()?.1,
        };
        if slots.is_empty() {
            self.tenants.remove(tenant);
        }
        self.recount(tenant, held, held - 1);
        self.taken -= 1;
        Some(end)
    }
}

impl Slots {
    pub(super) fn new(capacity: usize) -> Self {
        Slots {
            capacity,
            state: Mutex::new(SlotState::default()),
        }
    }

    /// A slot for `tenant`, ending the lingering of the oldest channel of the tenant that
    /// holds the most when none is free (of `tenant` itself if it holds as many).
    fn take(self: &Arc<Self>, tenant: &str) -> Slot {
        let mut state = self.state.lock();
        if state.taken >= self.capacity {
            let own = state.held_by(tenant);
            let victim = match state.by_count.last_key_value() {
                Some((&most, _)) if most <= own => Some(tenant.into()),
                Some((_, tenants)) => tenants.iter().next().cloned(),
                None => None,
            };
            if let Some(victim) = victim
                && let Some(end) = state.remove(&victim, None)
            {
                end.notify_one();
                metrics::counter!(m::LINGER_EVICTIONS).increment(1);
            }
        }
        let (number, end) = (state.next, Arc::new(Notify::new()));
        state.next += 1;
        let held = state.held_by(tenant);
        state
            .tenants
            .entry(tenant.into())
            .or_default()
            .insert(number, end.clone());
        state.recount(tenant, held, held + 1);
        state.taken += 1;
        metrics::gauge!(m::LINGERING).set(state.taken as f64);
        Slot {
            slots: self.clone(),
            tenant: tenant.into(),
            number,
            end,
        }
    }

    /// Gives a slot back, unless it was taken from its holder already.
    fn give_back(&self, tenant: &str, number: u64) {
        let mut state = self.state.lock();
        if state.remove(tenant, Some(number)).is_some() {
            metrics::gauge!(m::LINGERING).set(state.taken as f64);
        }
    }
}

/// A lingering slot: given back however the timer ends (also when aborted at shutdown).
struct Slot {
    slots: Arc<Slots>,
    tenant: Box<str>,
    number: u64,
    /// Signalled when another channel takes the slot.
    end: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back(&self.tenant, self.number);
    }
}

/// Waits until the hub has had no client for `linger` (or its slot is taken), then
/// releases it; ends early when a client holds it (its next leaving starts a new timer).
async fn linger_then_release(
    hubs: std::sync::Weak<Hubs>,
    hub: Arc<Hub>,
    linger: Duration,
    slots: Arc<Slots>,
) {
    let slot = slots.take(tenant_of(&hub.name));
    let mut ended = false;
    loop {
        let deadline = *hub.left_at.lock() + linger;
        if !ended {
            // How long the channel lingers: a timer, not a synchronisation.
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = slot.end.notified() => ended = true,
            }
        }
        if hub.refs.load(Ordering::Acquire) > 0 {
            hub.lingering.store(false, Ordering::Release);
            // A client that left between the two loads found the flag set and started no
            // timer: keep timing for it, unless one started since.
            if hub.refs.load(Ordering::Acquire) > 0 || hub.lingering.swap(true, Ordering::AcqRel) {
                return;
            }
            if !ended {
                continue;
            }
        }
        if ended || Instant::now() >= *hub.left_at.lock() + linger {
            hub.lingering.store(false, Ordering::Release);
            if let Some(hubs) = hubs.upgrade() {
                remove_if_unused(&hubs, &hub);
            }
            return;
        }
    }
}

/// Removes `hub` and ends its bus subscription if no client holds it.
pub(super) fn remove_if_unused(hubs: &Hubs, hub: &Arc<Hub>) {
    let mut map = hubs.write();
    if hub.refs.load(Ordering::Acquire) == 0 {
        if map.get(&hub.name).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            map.remove(&hub.name);
        }
        drop(map);
        hub.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signalled(slot: &Slot) -> bool {
        let notified = slot.end.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable()
    }

    #[test]
    fn the_tenant_of_a_channel_is_its_scope() {
        assert_eq!(tenant_of("~acme~orders"), "acme");
        assert_eq!(tenant_of("~a%7Eb~x"), "a%7Eb");
        assert_eq!(tenant_of("orders"), "");
        assert_eq!(tenant_of("~unterminated"), "");
    }

    #[test]
    fn a_full_pool_ends_a_slot_of_the_tenant_holding_the_most() {
        let slots = Arc::new(Slots::new(4));
        let quiet = slots.take("quiet");
        let churn: Vec<Slot> = (0..3).map(|_| slots.take("churn")).collect();
        // Full: the churning tenant's next slot ends its own oldest, again and again.
        let mut newer = Vec::new();
        for _ in 0..10 {
            newer.push(slots.take("churn"));
        }
        assert_eq!(slots.state.lock().taken, 4);
        assert_eq!(slots.state.lock().tenants["quiet"].len(), 1);
        // The quiet tenant's slot was never signalled; the churning tenant's first were.
        assert!(!signalled(&quiet));
        assert!(signalled(&churn[0]) && signalled(&churn[2]) && signalled(&newer[6]));
        assert!(!signalled(&newer[7]));
        // A tenant holding fewer takes a slot from the one holding the most.
        let second = slots.take("quiet");
        assert_eq!(slots.state.lock().tenants["quiet"].len(), 2);
        assert_eq!(slots.state.lock().tenants["churn"].len(), 2);
        // Ended and returned slots are counted once.
        drop((churn, newer, quiet, second));
        assert_eq!(slots.state.lock().taken, 0);
        assert!(slots.state.lock().tenants.is_empty());
        assert!(slots.state.lock().by_count.is_empty());
    }
}
