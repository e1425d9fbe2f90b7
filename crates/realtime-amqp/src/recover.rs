//! The task that watches the live generation and replaces a broken one: reconnect,
//! redeclare, rebind every subscribed channel, then tell each subscription it was
//! interrupted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use realtime_core::metrics as m;
use tokio::time::Instant;

use crate::link::{self, Shared};

/// Watches the live generation for as long as the bus lives: sends a probe every
/// [`probe_interval`](crate::AmqpBusConfig::probe_interval), and replaces the generation
/// when its connection, a channel or its consumer is gone, or when probes stop coming back
/// (the exchange or the queue's bindings deleted by hand).
pub(crate) async fn recover(shared: Arc<Shared>) {
    let config = &shared.config;
    let echo_within = config.probe_interval * 2 + config.operation_timeout;
    let mut next_probe = Instant::now();
    loop {
        // A failure reported, or the next probe due.
        let wait = next_probe.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(wait, shared.broken.notified()).await;
        let current = shared.current.read().clone();
        if let Some(generation) = current.filter(|g| g.healthy(echo_within)) {
            if Instant::now() >= next_probe {
                next_probe = Instant::now() + config.probe_interval;
                link::probe(&shared, &generation).await;
            }
            continue;
        }
        if !shared.down.swap(true, Ordering::AcqRel) {
            tracing::warn!("amqp connection, queue or route lost; the bus reconnects by itself");
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "amqp").set(0.0);
        }
        shared.inbox.connection_lost();
        let old = shared.current.write().take();
        if let Some(old) = old {
            old.close(Duration::from_millis(100)).await;
        }
        reconnect(&shared).await;
        next_probe = Instant::now() + config.probe_interval;
    }
}

/// Opens generations until one is up with every subscribed channel bound again, then
/// reports each channel resubscribed. The connection is opened without the inbox's lock
/// (it may take the connect timeout); the rebinding and the swap run under it, so no
/// subscribe runs meanwhile.
async fn reconnect(shared: &Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0u64;
    loop {
        attempts += 1;
        match link::open(shared).await {
            Ok(generation) => {
                let guard = shared.inbox.lock().await;
                let channels = shared.inbox.to_resubscribe(true);
                let mut failure = None;
                for channel in &channels {
                    if let Err(error) = link::bind(shared, &generation, channel).await {
                        failure = Some(error);
                        break;
                    }
                }
                match failure {
                    None => {
                        *shared.current.write() = Some(Arc::new(generation));
                        // Counted before the bus says it is connected.
                        shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        shared.down.store(false, Ordering::Release);
                        for channel in &channels {
                            shared.inbox.resubscribed(channel);
                        }
                        drop(guard);
                        metrics::gauge!(m::BUS_CONNECTED, "backend" => "amqp").set(1.0);
                        metrics::counter!(m::BUS_RECONNECTS, "backend" => "amqp").increment(1);
                        tracing::info!(
                            attempts,
                            "amqp connection back; subscriptions told they were interrupted"
                        );
                        return;
                    }
                    Some(error) => {
                        drop(guard);
                        log_failure(attempts, &error);
                        generation.close(Duration::from_millis(100)).await;
                    }
                }
            }
            Err(error) => log_failure(attempts, &error),
        }
        // A back-off between attempts, not a synchronisation.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.config.reconnect_delay_max);
    }
}

/// The first failed attempt and every tenth after it are warnings (a refused password or a
/// conflicting exchange is why the bus stays down); the others are debug.
fn log_failure(attempts: u64, error: &realtime_core::Error) {
    if attempts % 10 == 1 {
        tracing::warn!(attempts, %error, "amqp reconnect failed; trying again");
    } else {
        tracing::debug!(attempts, %error, "amqp reconnect failed");
    }
}
