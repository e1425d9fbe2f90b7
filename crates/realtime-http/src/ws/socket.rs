//! What every adapter's socket loop shares: the next step after an operation, writes bounded
//! by the write timeout (and counted when they time out), and the ping and keepalive timers.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

use super::close_code;

/// What a socket loop does after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Go on.
    Continue,
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
    /// Stop: the client is gone (or did not take a write in time).
    Gone,
}

impl Step {
    /// A message over the read limit.
    pub const TOO_BIG: Step = Step::Close(close_code::TOO_BIG, "message too big");
    /// A text frame that is not UTF-8.
    pub const NOT_UTF8: Step = Step::Close(close_code::INVALID_PAYLOAD, "text frame is not UTF-8");

    /// Whether the loop goes on.
    pub fn goes_on(self) -> bool {
        self == Step::Continue
    }
}

/// A write that must finish within `timeout`; a failed or late write ends the connection
/// (a late one is counted: `realtime_write_timeouts_total{transport="ws"}`).
pub async fn timed_write<E>(timeout: Duration, write: impl Future<Output = Result<(), E>>) -> Step {
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Step::Continue,
        Ok(Err(_)) => Step::Gone,
        Err(_) => {
            tracing::debug!("websocket write timed out");
            metrics::counter!(realtime_core::metrics::WRITE_TIMEOUTS, "transport" => "ws")
                .increment(1);
            Step::Gone
        }
    }
}

/// A connection's timers: a ping every heartbeat, and the keepalive message if configured.
#[derive(Debug)]
pub struct Timers {
    ping: Interval,
    keepalive: Option<Interval>,
}

/// Which timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Send a WebSocket ping.
    Ping,
    /// Send [`WsSession::keepalive`](super::WsSession::keepalive).
    Keepalive,
}

impl Timers {
    /// Timers whose first ticks are one period from now.
    pub fn new(heartbeat: Duration, keepalive: Option<Duration>) -> Self {
        let every = |period: Duration| {
            let mut interval = interval_at(Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        };
        Timers {
            ping: every(heartbeat),
            keepalive: keepalive.map(every),
        }
    }

    /// The next timer to fire.
    pub async fn tick(&mut self) -> Tick {
        match &mut self.keepalive {
            Some(keepalive) => tokio::select! {
                _ = self.ping.tick() => Tick::Ping,
                _ = keepalive.tick() => Tick::Keepalive,
            },
            None => {
                self.ping.tick().await;
                Tick::Ping
            }
        }
    }
}
