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
///
/// ```
/// # fn main() -> realtime_core::Result<()> {
/// use std::sync::Arc;
/// use realtime_core::{InMemoryStoreConfig, Manager};
///
/// let mut config = InMemoryStoreConfig::default(); // `#[non_exhaustive]`: set fields
/// config.max_events_per_channel = 10_000;
/// let store = config.build()?; // an InMemoryStore; the bounds are checked here
/// let manager = Manager::builder().store(Arc::new(store)).build()?;
/// # drop(manager);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InMemoryStoreConfig {
    /// Events kept per channel; older ones are trimmed. Default 1,000.
    pub max_events_per_channel: usize,
    /// Payload bytes kept per channel; older events are trimmed past it (the newest event is
    /// always kept). Default 16 MiB.
    pub max_bytes_per_channel: usize,
    /// Bytes kept over all channels (payloads plus a fixed per-event and per-channel
    /// overhead); past it the least recently used channels are forgotten. Default 256 MiB.
    pub max_bytes: usize,
    /// A channel neither written nor read for this long is forgotten (its next event starts a
    /// new epoch). Default 1 hour.
    pub idle_ttl: Duration,
    /// Channels kept at most; past it the least recently used tenth is forgotten.
    /// Default 100,000.
    pub max_channels: usize,
}

impl Default for InMemoryStoreConfig {
    fn default() -> Self {
        InMemoryStoreConfig {
            max_events_per_channel: 1_000,
            max_bytes_per_channel: 16 << 20,
            max_bytes: 256 << 20,
            idle_ttl: Duration::from_secs(3_600),
            max_channels: 100_000,
        }
    }
}

impl InMemoryStoreConfig {
    /// Checks the values and builds the store.
    pub fn build(self) -> Result<InMemoryStore> {
        for (field, value) in [
            ("max_events_per_channel", self.max_events_per_channel),
            ("max_bytes_per_channel", self.max_bytes_per_channel),
            ("max_bytes", self.max_bytes),
            ("max_channels", self.max_channels),
        ] {
            if value == 0 {
                return Err(Error::invalid_config(field, "must be at least 1"));
            }
        }
        if self.idle_ttl.is_zero() {
            return Err(Error::invalid_config("idle_ttl", "must be positive"));
        }
        Ok(InMemoryStore {
            config: self,
            state: Mutex::new(State {
                channels: HashMap::new(),
                bytes: 0,
                last_sweep: Instant::now(),
            }),
            closed: AtomicBool::new(false),
        })
    }
}

/// What an event or a channel costs besides its payload (structs, name, map entry).
const EVENT_OVERHEAD: usize = 160;
const CHANNEL_OVERHEAD: usize = 192;
const KEY_OVERHEAD: usize = 64;

/// A bounded, per-channel replay history in this process's memory.
///
/// Seeks by offset arithmetic (O(1) to find the start, O(k) to copy k events). Each channel
/// gets a fresh random epoch when it is first written and whenever it was forgotten; reading
/// a channel that has no history stores nothing. Memory is bounded by event count and bytes
/// per channel, total bytes and the number of channels.
pub struct InMemoryStore {
    config: InMemoryStoreConfig,
    state: Mutex<State>,
    closed: AtomicBool,
}

struct State {
    channels: HashMap<String, ChannelLog>,
    /// Bytes accounted over all channels.
    bytes: usize,
    last_sweep: Instant,
}

struct ChannelLog {
    epoch: Epoch,
    head: u64,
    events: VecDeque<Event>,
    bytes: usize,
    last_used: Instant,
    /// Idempotency keys and the offsets appended with them (pruned to retained events).
    keys: HashMap<String, u64>,
}

impl ChannelLog {
    fn oldest(&self) -> u64 {
        self.head + 1 - self.events.len() as u64
    }

    fn head(&self) -> Position {
        Position::new(self.epoch, self.head)
    }
}

fn cost(event: &Event) -> usize {
    event.data.len() + EVENT_OVERHEAD
}

impl State {
    fn forget(&mut self, channel: &str) {
        if let Some(log) = self.channels.remove(channel) {
            self.bytes -= log.bytes + CHANNEL_OVERHEAD + channel.len();
        }
    }

    /// Forgets channels idle for `ttl`, at most once per quarter of it.
    fn sweep(&mut self, now: Instant, ttl: Duration) {
        if now.duration_since(self.last_sweep) < ttl / 4 {
            return;
        }
        self.last_sweep = now;
        let idle: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, log)| now.duration_since(log.last_used) >= ttl)
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            self.forget(&name);
        }
    }

    /// Forgets the least recently used tenth of the channels (at least one): one scan pays
    /// for many creations, so eviction costs O(1) per channel created, amortised.
    fn evict_least_recently_used(&mut self, keep: &str) {
        let mut used: Vec<(Instant, &String)> = self
            .channels
            .iter()
            .filter(|(name, _)| name.as_str() != keep)
            .map(|(name, log)| (log.last_used, name))
            .collect();
        let n = (used.len() / 10).max(1).min(used.len());
        if n == 0 {
            return;
        }
        used.select_nth_unstable(n - 1);
        let victims: Vec<String> = used[..n].iter().map(|(_, name)| (*name).clone()).collect();
        for name in victims {
            self.forget(&name);
        }
    }
}

impl InMemoryStore {
    /// A store with the default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets a channel's history, as if it had expired. Its next use starts a new epoch.
    pub fn forget(&self, channel: &str) {
        self.state.lock().forget(channel);
    }

    /// The number of channels currently remembered.
    pub fn channel_count(&self) -> usize {
        self.state.lock().channels.len()
    }

    /// Bytes currently accounted against [`InMemoryStoreConfig::max_bytes`].
    pub fn bytes(&self) -> usize {
        self.state.lock().bytes
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Runs `f` on the channel's log if it has one (marking it used), after expiring idle
    /// channels.
    fn with_existing<T>(&self, channel: &str, f: impl FnOnce(Option<&ChannelLog>) -> T) -> T {
        let now = Instant::now();
        let mut state = self.state.lock();
        let ttl = self.config.idle_ttl;
        state.sweep(now, ttl);
        let expired = state
            .channels
            .get(channel)
            .is_some_and(|log| now.duration_since(log.last_used) >= ttl);
        if expired {
            state.forget(channel);
        }
        let log = state.channels.get_mut(channel).map(|log| {
            log.last_used = now;
            &*log
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
        let config = &self.config;
        let now = Instant::now();
        let mut guard = self.state.lock();
        let state = &mut *guard;
        state.sweep(now, config.idle_ttl);
        let expired = state
            .channels
            .get(event.channel.as_str())
            .is_some_and(|log| now.duration_since(log.last_used) >= config.idle_ttl);
        if expired {
            state.forget(&event.channel);
        }
        if !state.channels.contains_key(event.channel.as_str()) {
            if state.channels.len() >= config.max_channels {
                state.evict_least_recently_used(&event.channel);
            }
            state.bytes += CHANNEL_OVERHEAD + event.channel.len();
            state.channels.insert(
                event.channel.clone(),
                ChannelLog {
                    epoch: Epoch::fresh(),
                    head: 0,
                    events: VecDeque::new(),
                    bytes: 0,
                    last_used: now,
                    keys: HashMap::new(),
                },
            );
        }
        let channel = event.channel.clone();
        let Some(log) = state.channels.get_mut(channel.as_str()) else {
            unreachable!("the channel's log was just ensured");
        };
        log.last_used = now;
        if let Some(&offset) = event
            .idempotency_key
            .as_ref()
            .and_then(|key| log.keys.get(key))
            && offset >= log.oldest()
        {
            return Ok(event.into_event(Position::new(log.epoch, offset)));
        }
        log.head += 1;
        if let Some(key) = event.idempotency_key.clone() {
            // Keys count against the byte bounds like the events they name — once: a key
            // whose event was trimmed is reused in place, its cost already counted.
            let cost = key.len() + KEY_OVERHEAD;
            if log.keys.insert(key, log.head).is_none() {
                log.bytes += cost;
                state.bytes += cost;
            }
        }
        let stored = event.into_event(Position::new(log.epoch, log.head));
        let added = cost(&stored);
        log.events.push_back(stored.clone());
        log.bytes += added;
        state.bytes += added;
        while log.events.len() > 1
            && (log.events.len() > config.max_events_per_channel
                || log.bytes > config.max_bytes_per_channel)
        {
            if let Some(old) = log.events.pop_front() {
                log.bytes -= cost(&old);
                state.bytes -= cost(&old);
            }
        }
        if log.keys.len() > 2 * log.events.len() + 16 {
            let oldest = log.oldest();
            let mut freed = 0;
            log.keys.retain(|key, offset| {
                let keep = *offset >= oldest;
                if !keep {
                    freed += key.len() + KEY_OVERHEAD;
                }
                keep
            });
            log.bytes -= freed;
            state.bytes -= freed;
        }
        while state.bytes > config.max_bytes && state.channels.len() > 1 {
            state.evict_least_recently_used(&channel);
        }
        Ok(stored)
    }

    async fn read(&self, channel: &str, after: Position, limit: usize) -> Result<ReadResult> {
        self.check_open()?;
        Ok(self.with_existing(channel, |log| {
            let (head, oldest) = match log {
                Some(log) => (log.head(), log.oldest()),
                None => (Position::start(Epoch::NONE), 1),
            };
            let gap = ReadResult::gap_for(after, head, oldest, limit);
            let events = match (log, gap) {
                (Some(log), None | Some(GapReason::Limit)) => {
                    let start = (after.offset + 1 - oldest) as usize;
                    let take = (log.events.len() - start).min(limit);
                    log.events.range(start..start + take).cloned().collect()
                }
                _ => Vec::new(),
            };
            ReadResult {
                events,
                head,
                oldest,
                gap,
            }
        }))
    }

    async fn head(&self, channel: &str) -> Result<Position> {
        self.check_open()?;
        Ok(self.with_existing(channel, |log| {
            log.map_or(Position::start(Epoch::NONE), ChannelLog::head)
        }))
    }

    fn reach(&self) -> crate::Reach {
        crate::Reach::Process
    }

    async fn restart(&self, channel: &str) -> Result<()> {
        self.check_open()?;
        self.forget(channel);
        Ok(())
    }

    async fn check(&self) -> Result<()> {
        self.check_open()
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        let mut state = self.state.lock();
        state.channels.clear();
        state.bytes = 0;
        Ok(())
    }
}
