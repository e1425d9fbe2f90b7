//! Warnings that repeat once per event or request — every publish while the bus is down —
//! written at most once per interval with the count of those left out: an outage under load
//! costs a line per interval, not a line per event. The adapters and backends use it too.
//!
//! ```
//! use realtime_core::throttle::{Throttle, WARN_EVERY};
//!
//! static REFUSED: Throttle = Throttle::new(WARN_EVERY);
//! for _ in 0..1_000 {
//!     if let Some(left_out) = REFUSED.admit() {
//!         tracing::warn!(similar_since_last = left_out, "the bus refused an event");
//!     }
//! }
//! ```

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How often a throttled warning is written at most.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// A limiter for one warning; see the [module](self).
pub struct Throttle {
    every: Duration,
    /// When a line was last written, and the occurrences left out since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Self {
        Throttle {
            every,
            state: parking_lot::const_mutex((None, 0)),
        }
    }

    /// `Some(left_out)` when a line may be written now (`left_out`: the occurrences since
    /// the last line, not written); `None` when this one is left out.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock();
        match state.0 {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                state.0 = Some(now);
                Some(std::mem::take(&mut state.1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count_left_out() {
        let throttle = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(throttle.admit_at(start), Some(0));
        for ms in 1..=1_000 {
            assert_eq!(throttle.admit_at(start + Duration::from_millis(ms)), None);
        }
        assert_eq!(
            throttle.admit_at(start + Duration::from_secs(10)),
            Some(1_000)
        );
        assert_eq!(throttle.admit_at(start + Duration::from_secs(11)), None);
        assert_eq!(throttle.admit_at(start + Duration::from_secs(30)), Some(1));
    }
}
