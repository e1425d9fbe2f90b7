//! What every adapter's socket loop shares: the next step after an operation, writes bounded
//! by the write timeout (and counted when they time out), and the ping and keepalive timers.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

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
    /// A frame that breaks the WebSocket protocol.
    pub const PROTOCOL: Step = Step::Close(close_code::PROTOCOL, "protocol error");
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
/// One timer entry serves both (it is set to whichever is due first): an idle connection
/// keeps one registration, not two.
#[derive(Debug)]
pub struct Timers {
    sleep: Pin<Box<Sleep>>,
    heartbeat: Duration,
    next_ping: Instant,
    keepalive: Option<(Duration, Instant)>,
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
        let now = Instant::now();
        let next_ping = now + heartbeat;
        let keepalive = keepalive.map(|period| (period, now + period));
        let first = keepalive.map_or(next_ping, |(_, next)| next.min(next_ping));
        Timers {
            sleep: Box::pin(sleep_until(first)),
            heartbeat,
            next_ping,
            keepalive,
        }
    }

    fn next_due(&self) -> Instant {
        match self.keepalive {
            Some((_, next)) => next.min(self.next_ping),
            None => self.next_ping,
        }
    }

    /// The next timer to fire.
    pub async fn tick(&mut self) -> Tick {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// [`tick`](Self::tick) as a poll function.
    ///
    /// # Behavior
    /// `Ready` when the ping or the keepalive is due (the ping first when both are), the
    /// next of that kind one period after now (a late tick delays the following ones rather
    /// than bunching them); `Pending`, with `cx` woken at the next due time, otherwise.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Tick> {
        loop {
            std::task::ready!(self.sleep.as_mut().poll(cx));
            let now = Instant::now();
            let tick = if now >= self.next_ping {
                self.next_ping = now + self.heartbeat;
                Some(Tick::Ping)
            } else if let Some((period, next)) = &mut self.keepalive
                && now >= *next
            {
                *next = now + *period;
                Some(Tick::Keepalive)
            } else {
                None
            };
            let due = self.next_due();
            self.sleep.as_mut().reset(due);
            if let Some(tick) = tick {
                return Poll::Ready(tick);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_timer_entry_serves_pings_and_keepalives_each_on_its_period() {
        let start = Instant::now();
        let mut timers = Timers::new(Duration::from_secs(10), Some(Duration::from_secs(4)));
        let mut seen = Vec::new();
        while seen.len() < 6 {
            let tick = timers.tick().await;
            seen.push((tick, (Instant::now() - start).as_secs()));
        }
        assert_eq!(
            seen,
            [
                (Tick::Keepalive, 4),
                (Tick::Keepalive, 8),
                (Tick::Ping, 10),
                (Tick::Keepalive, 12),
                (Tick::Keepalive, 16),
                (Tick::Ping, 20),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_keepalive_only_pings() {
        let start = Instant::now();
        let mut timers = Timers::new(Duration::from_secs(3), None);
        for n in 1..=3 {
            assert_eq!(timers.tick().await, Tick::Ping);
            assert_eq!((Instant::now() - start).as_secs(), 3 * n);
        }
    }
}
