//! Liveness: this instance's queue marked alive every heartbeat interval, and the queues of
//! instances that died reaped.

use std::sync::Arc;

use tokio::time::Instant;

use crate::queues;
use crate::receiver::Shared;

/// Every heartbeat interval: the instance's queue marked alive (a task of its own, so slow
/// reaping never delays it).
pub(crate) async fn heartbeat(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.heartbeat_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let own = shared.url.read().clone();
        if let Err(error) = queues::heartbeat(&shared.client, &shared.config, &own).await {
            // Unmarked for `reap_after`, the queue would be reaped by another instance.
            tracing::warn!(%error, "marking this instance's queue alive failed");
            metrics::counter!(HEARTBEAT_FAILURES).increment(1);
        }
    }
}

/// Times marking this instance's queue alive failed.
const HEARTBEAT_FAILURES: &str = "realtime_sqs_heartbeat_failures_total";

/// Queues whose liveness tag one reaper round reads at most: the tag calls are rate-limited
/// per account, and every instance reaps.
const REAP_SAMPLE: usize = 10;

/// Every heartbeat interval: a sample of the other instances' queues checked, and those of
/// instances that died deleted. A queue is reaped when its mark is older than `reap_after`
/// by this instance's clock AND this instance has seen the mark unchanged for three
/// heartbeat intervals of its own clock — so an instance whose clock runs ahead never reaps a
/// live queue (its mark keeps changing).
pub(crate) async fn reap(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.config.heartbeat_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Each queue's last mark seen, and since when (this instance's clock).
    let mut seen: std::collections::HashMap<String, (u64, Instant)> = Default::default();
    let mut next = 0usize;
    loop {
        every.tick().await;
        let own = shared.url.read().clone();
        let peers: Vec<String> = shared
            .peers
            .read()
            .0
            .iter()
            .filter(|url| **url != own)
            .cloned()
            .collect();
        seen.retain(|url, _| peers.contains(url));
        if peers.is_empty() {
            continue;
        }
        let cutoff = queues::now_secs().saturating_sub(shared.config.reap_after.as_secs());
        let unchanged_for = shared.config.heartbeat_interval * 3;
        let mut reaped = 0;
        for i in 0..REAP_SAMPLE.min(peers.len()) {
            let url = &peers[(next + i) % peers.len()];
            // A queue without the mark is not one this crate made: left alone.
            let Some(mark) = queues::mark_of(&shared.client, &shared.config, url).await else {
                continue;
            };
            let since = match seen.get(url) {
                Some(&(last, since)) if last == mark => since,
                _ => {
                    seen.insert(url.clone(), (mark, Instant::now()));
                    continue;
                }
            };
            if mark < cutoff
                && since.elapsed() >= unchanged_for
                && queues::delete_queue(&shared.client, &shared.config, url).await
            {
                tracing::info!(queue = %url, "deleted the queue of an instance that stopped marking it alive");
                seen.remove(url);
                reaped += 1;
            }
        }
        next = next.wrapping_add(REAP_SAMPLE);
        if reaped > 0 {
            let _ = shared.refresh_peers().await;
        }
    }
}
