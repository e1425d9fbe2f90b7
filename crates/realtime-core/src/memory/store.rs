use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::event::{Event, NewEvent};
use crate::gap::GapReason;
use crate::position::{Epoch, Position};
use crate::store::{ReadResult, Store};

/// Bounds of an [`InMemoryStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InMemoryStoreConfig {
    /// Events kept per channel; older ones are trimmed. Default 1,000.
    pub max_events_per_channel: usize,
    /// A channel neither written nor read for this long is forgotten (its next event starts a
    /// new epoch). Default 1 hour.
    pub idle_ttl: Duration,
    /// Channels kept at most; past it the least recently used channel is forgotten.
    /// Default 100,000.
    pub max_channels: usize,
}

impl Default for InMemoryStoreConfig {
    fn default() -> Self {
        InMemoryStoreConfig {
            max_events_per_channel: 1_000,
            idle_ttl: Duration::from_secs(3_600),
            max_channels: 100_000,
        }
    }
}

impl InMemoryStoreConfig {
    /// Checks the values and builds the store.
    pub fn build(self) -> Result<InMemoryStore> {
        if self.max_events_per_channel == 0 {
            return Err(Error::config(
                "max_events_per_channel",
                "must be at least 1",
            ));
        }
        if self.idle_ttl.is_zero() {
            return Err(Error::config("idle_ttl", "must be positive"));
        }
        if self.max_channels == 0 {
            return Err(Error::config("max_channels", "must be at least 1"));
        }
        Ok(InMemoryStore {
            config: self,
            state: Mutex::new(State {
                channels: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            closed: AtomicBool::new(false),
        })
    }
}

/// A bounded, per-channel replay history in this process's memory.
///
/// Seeks by offset arithmetic (O(1) to find the start, O(k) to copy k events). Each channel
/// gets a fresh random epoch when it is first used and whenever it was forgotten.
pub struct InMemoryStore {
    config: InMemoryStoreConfig,
    state: Mutex<State>,
    closed: AtomicBool,
}

struct State {
    channels: HashMap<String, ChannelLog>,
    last_sweep: Instant,
}

struct ChannelLog {
    epoch: Epoch,
    head: u64,
    events: VecDeque<Event>,
    last_used: Instant,
}

impl ChannelLog {
    fn oldest(&self) -> u64 {
        self.head + 1 - self.events.len() as u64
    }
}

impl InMemoryStore {
    /// A store with the default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a channel's history, as if it had expired. Its next use starts a new epoch.
    pub fn forget(&self, channel: &str) {
        self.state.lock().channels.remove(channel);
    }

    /// The number of channels currently remembered.
    pub fn channel_count(&self) -> usize {
        self.state.lock().channels.len()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Runs `f` on the channel's log, creating it (new epoch) if absent, after expiring idle
    /// channels at most once per quarter of the TTL.
    fn with_log<T>(&self, channel: &str, f: impl FnOnce(&mut ChannelLog) -> T) -> T {
        let now = Instant::now();
        let mut state = self.state.lock();
        let ttl = self.config.idle_ttl;
        if now.duration_since(state.last_sweep) >= ttl / 4 {
            state
                .channels
                .retain(|_, log| now.duration_since(log.last_used) < ttl);
            state.last_sweep = now;
        }
        if let Some(log) = state.channels.get_mut(channel) {
            if now.duration_since(log.last_used) < ttl {
                log.last_used = now;
                return f(log);
            }
            state.channels.remove(channel);
        }
        if state.channels.len() >= self.config.max_channels {
            let victim = state
                .channels
                .iter()
                .min_by_key(|(_, log)| log.last_used)
                .map(|(name, _)| name.clone());
            if let Some(victim) = victim {
                state.channels.remove(&victim);
            }
        }
        let log = state
            .channels
            .entry(channel.to_owned())
            .or_insert_with(|| ChannelLog {
                epoch: super::fresh_epoch(),
                head: 0,
                events: VecDeque::new(),
                last_used: now,
            });
        f(log)
    }
}

impl Default for InMemoryStore {
    fn default() -> Self {
        // The default configuration is valid by construction.
        match InMemoryStoreConfig::default().build() {
            Ok(store) => store,
            Err(e) => unreachable!("default in-memory store config is invalid: {e}"),
        }
    }
}

impl fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for InMemoryStore {
    async fn append(&self, event: NewEvent) -> Result<Event> {
        self.check_open()?;
        let max = self.config.max_events_per_channel;
        let channel = event.channel.clone();
        Ok(self.with_log(&channel, |log| {
            log.head += 1;
            let stored = event.into_event(Position::new(log.epoch, log.head));
            if log.events.len() == max {
                log.events.pop_front();
            }
            log.events.push_back(stored.clone());
            stored
        }))
    }

    async fn read(&self, channel: &str, after: Position, limit: usize) -> Result<ReadResult> {
        self.check_open()?;
        Ok(self.with_log(channel, |log| {
            let head = Position::new(log.epoch, log.head);
            let oldest = log.oldest();
            let result = |events, gap| ReadResult {
                events,
                head,
                oldest,
                gap,
            };
            if after.epoch != log.epoch {
                return result(Vec::new(), Some(GapReason::EpochChanged));
            }
            if after.offset > log.head {
                return result(Vec::new(), Some(GapReason::UnknownPosition));
            }
            if after.offset + 1 < oldest {
                return result(Vec::new(), Some(GapReason::Trimmed));
            }
            let start = (after.offset + 1 - oldest) as usize;
            let available = log.events.len() - start;
            let take = available.min(limit);
            let events = log.events.range(start..start + take).cloned().collect();
            result(events, (available > limit).then_some(GapReason::Limit))
        }))
    }

    async fn head(&self, channel: &str) -> Result<Position> {
        self.check_open()?;
        Ok(self.with_log(channel, |log| Position::new(log.epoch, log.head)))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.state.lock().channels.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_channels_expire_with_a_new_epoch() {
        let store = InMemoryStoreConfig {
            idle_ttl: Duration::from_secs(60),
            ..Default::default()
        }
        .build()
        .unwrap();
        let first = store.append(NewEvent::new("a", "1")).await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        let again = store.append(NewEvent::new("a", "2")).await.unwrap();
        assert_ne!(first.id.epoch, again.id.epoch);
        assert_eq!(again.id.offset, 1);
        // Sweeping also drops channels nobody touches.
        store.append(NewEvent::new("b", "1")).await.unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        store.head("c").await.unwrap();
        assert_eq!(store.channel_count(), 1);
    }

    #[tokio::test]
    async fn least_recently_used_channel_is_evicted_past_the_limit() {
        let store = InMemoryStoreConfig {
            max_channels: 2,
            ..Default::default()
        }
        .build()
        .unwrap();
        for channel in ["a", "b", "c"] {
            store.append(NewEvent::new(channel, "x")).await.unwrap();
        }
        assert_eq!(store.channel_count(), 2);
    }

    #[test]
    fn invalid_config_is_rejected() {
        let bad = InMemoryStoreConfig {
            max_events_per_channel: 0,
            ..Default::default()
        };
        assert!(matches!(bad.build(), Err(Error::InvalidConfig { .. })));
    }
}
