//! Releasing a channel when its last local client leaves: at once, or in per-instance mode
//! after [`ManagerConfig::history_linger`](super::ManagerConfig::history_linger), so a client
//! that comes back within it resumes exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::hub::Hub;
use super::{Hubs, Inner};
use crate::metrics as m;

/// Channels that may linger at once; past this a channel is released with its last client.
const MAX_LINGERING: usize = 10_000;

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

    /// Starts the hub's one linger timer; `false` when it cannot linger (too many do, or no
    /// runtime to time it).
    fn start_timer(&self, hub: &Arc<Hub>, linger: Duration) -> bool {
        let taken = self
            .lingering
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LINGERING).then_some(n + 1)
            });
        let Ok(before) = taken else { return false };
        metrics::gauge!(m::LINGERING).set((before + 1) as f64);
        let (hubs, lingering) = (Arc::downgrade(&self.hubs), self.lingering.clone());
        let slot = Slot(lingering);
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

/// Gives its lingering slot back however the timer ends (also when aborted at shutdown).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        let left = self.0.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!(m::LINGERING).set(left as f64);
    }
}

/// Waits until the hub has had no client for `linger`, then releases it; ends early when a
/// client holds it (its next leaving starts a new timer).
async fn linger_then_release(
    hubs: std::sync::Weak<Hubs>,
    hub: Arc<Hub>,
    linger: Duration,
    _slot: Slot,
) {
    loop {
        let deadline = *hub.left_at.lock() + linger;
        // How long the channel lingers: a timer, not a synchronisation.
        tokio::time::sleep_until(deadline).await;
        if hub.refs.load(Ordering::Acquire) > 0 {
            hub.lingering.store(false, Ordering::Release);
            // A client that left between the two loads found the flag set and started no
            // timer: keep timing for it, unless one started since.
            if hub.refs.load(Ordering::Acquire) > 0 || hub.lingering.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        if Instant::now() >= *hub.left_at.lock() + linger {
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
