//! Releasing a channel when its last local client leaves: at once, or in per-instance mode
//! after [`ManagerConfig::history_linger`](super::ManagerConfig::history_linger), so a client
//! that comes back within it resumes exactly.

use std::collections::{BTreeMap, HashMap};
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

    /// Starts the hub's one linger timer in a slot (ending another channel's linger when
    /// all are taken); `false` when there is no runtime to time it.
    fn start_timer(&self, hub: &Arc<Hub>, linger: Duration) -> bool {
        let slot = self.lingering.take(tenant_of(&hub.name));
        let hubs = Arc::downgrade(&self.hubs);
        // Without a runtime the slot is returned as the future holding it is dropped.
        let Some(timer) = self
            .spawner
            .spawn(linger_then_release(hubs, hub.clone(), linger, slot))
        else {
            return false;
        };
        *hub.linger_timer.lock() = Some(timer.abort_handle());
        true
    }
}

/// The tenant a lingering slot is counted against: the scope of a tenant-scoped channel
/// (`~tenant~channel`), or one shared tenant for every other.
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
    taken: usize,
    next: u64,
}

impl Slots {
    pub(super) fn new(capacity: usize) -> Self {
        Slots {
            capacity,
            state: Mutex::new(SlotState::default()),
        }
    }

    /// A slot for `tenant`, ending the lingering of the oldest channel of the tenant that
    /// holds the most when none is free.
    fn take(self: &Arc<Self>, tenant: &str) -> Slot {
        let mut state = self.state.lock();
        if state.taken >= self.capacity {
            let own = state.tenants.get(tenant).map_or(0, BTreeMap::len);
            // The most-holding tenant; a tie goes against the tenant asking.
            let victim = state
                .tenants
                .iter()
                .filter(|(name, slots)| slots.len() > own || &***name == tenant)
                .max_by_key(|(_, slots)| slots.len())
                .map(|(name, _)| name.clone());
            if let Some(victim) = victim
                && let Some(slots) = state.tenants.get_mut(&victim)
                && let Some((_, end)) = slots.pop_first()
            {
                if slots.is_empty() {
                    state.tenants.remove(&victim);
                }
                state.taken -= 1;
                end.notify_one();
                metrics::counter!(m::LINGER_EVICTIONS).increment(1);
            }
        }
        let (number, end) = (state.next, Arc::new(Notify::new()));
        state.next += 1;
        state
            .tenants
            .entry(tenant.into())
            .or_default()
            .insert(number, end.clone());
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
        let Some(slots) = state.tenants.get_mut(tenant) else {
            return;
        };
        if slots.remove(&number).is_none() {
            return;
        }
        if slots.is_empty() {
            state.tenants.remove(tenant);
        }
        state.taken -= 1;
        metrics::gauge!(m::LINGERING).set(state.taken as f64);
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
    slot: Slot,
) {
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
    }
}
