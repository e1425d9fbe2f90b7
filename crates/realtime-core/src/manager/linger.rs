//! Releasing a channel when its last local client leaves: at once, or in per-instance mode
//! after [`ManagerConfig::history_linger`](super::ManagerConfig::history_linger), so a client
//! that comes back within it resumes exactly.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::hub::Hub;
use super::{Hubs, Inner};
use crate::metrics as m;

/// Channels that may linger at once; past this a channel is released with its last client.
const MAX_LINGERING: usize = 10_000;

impl Inner {
    /// Drops one reference; the last one removes the hub and its bus subscription, at once
    /// or, in per-instance mode, after the linger if no client took it meanwhile.
    pub(super) fn release_hub(&self, hub: &Arc<Hub>) {
        if hub.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let release = hub.releases.fetch_add(1, Ordering::AcqRel) + 1;
        let linger = self.config.history_linger;
        let lingers = hub.per_instance && !linger.is_zero() && !self.closed.load(Ordering::Acquire);
        if !(lingers && self.linger(hub, release, linger)) {
            remove_if_unused(&self.hubs, hub);
        }
    }

    /// Removes `hub` after `linger` unless it was taken (and released again) meanwhile;
    /// `false` when it cannot linger (too many do, or no runtime to time it).
    fn linger(&self, hub: &Arc<Hub>, release: u64, linger: Duration) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let taken = self
            .lingering
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_LINGERING).then_some(n + 1)
            });
        let Ok(before) = taken else { return false };
        metrics::gauge!(m::LINGERING).set((before + 1) as f64);
        let (hubs, lingering, hub) = (
            Arc::downgrade(&self.hubs),
            self.lingering.clone(),
            hub.clone(),
        );
        runtime.spawn(async move {
            // How long the channel lingers: a timer, not a synchronisation.
            tokio::time::sleep(linger).await;
            let left = lingering.fetch_sub(1, Ordering::AcqRel) - 1;
            metrics::gauge!(m::LINGERING).set(left as f64);
            let hubs = hubs.upgrade();
            if let Some(hubs) = hubs.filter(|_| hub.releases.load(Ordering::Acquire) == release) {
                remove_if_unused(&hubs, &hub);
            }
        });
        true
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
