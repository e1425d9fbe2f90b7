use std::time::Duration;

use crate::error::{Error, Result};
use crate::history::History;

/// How a [`Manager`](crate::Manager) behaves. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Names this instance in logs and generated client ids. Default: a random id.
    pub instance_id: String,
    /// Clients this instance serves at most; more get
    /// [`Error::TooManyConnections`]. Default 10,000.
    pub max_connections: usize,
    /// Messages queued per client before it counts as slow. Default 256.
    pub client_buffer: usize,
    /// Events replayed per channel at most on resume; a client further behind gets a
    /// `limit` gap instead of a partial replay. Default 1,000.
    pub replay_limit: usize,
    /// Payload bytes one subscribe (or join) replays at most, across all its channels: what
    /// one connection holds while it writes its replay, however many channels it resumes
    /// (a WebSocket connection: its URL's replay and one in-band `subscribe`'s at most). A
    /// channel whose replay does not fit what is left gets a `limit` gap instead (and, with
    /// `replay_tail_after_gap`, the newest events that fit). Default 16 MiB.
    pub replay_max_bytes: usize,
    /// What happens to a client that does not keep up (its queue is full, or it is
    /// `max_lag` behind). Default [`SlowConsumer::Disconnect`].
    pub slow_consumer: SlowConsumer,
    /// Events a new subscriber (one without a position to resume from) receives before live
    /// ones: the newest of each channel, exact and position-stamped, at most `replay_limit`.
    /// A request's own [`ChannelRequest::backlog`](crate::ChannelRequest::backlog) overrides
    /// it. Default 0: live only (the Go package sent its `ReplayLimit` newest).
    pub backlog_on_connect: usize,
    /// After a gap on resume, also send the newest retained events (at most `replay_limit`).
    /// Default `false`: only the gap signal, then live events.
    pub replay_tail_after_gap: bool,
    /// Channels one client may subscribe to at most. Default 32.
    pub max_channels_per_client: usize,
    /// Longest channel name in bytes. Default 128.
    pub max_channel_len: usize,
    /// Largest event payload in bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// How long a stored event the bus refused is offered to it again in the background
    /// (the publish itself has already succeeded). Default 30 s.
    pub broadcast_retry: Duration,
    /// How long subscribing may wait for the store and the bus (bus subscription, head,
    /// replay) before it fails with a retryable timeout. Default 10 s.
    pub subscribe_timeout: Duration,
    /// How long a live repair (events missed on the bus, read back from the store) waits for
    /// clients with full queues to read before it hands them more. A repair may carry more
    /// events than a queue holds; clients that read keep up with it, and a client still full
    /// after this long is closed as a slow consumer. Default 2 s.
    pub repair_patience: Duration,
    /// A client whose oldest queued event is this much older than the event being queued is
    /// closed as a slow consumer (or, with [`SlowConsumer::SkipWithGap`], skips it) even if its queue
    /// is not full: it is that far behind live, and would otherwise drift past the retained
    /// history. Default 30 s.
    pub max_lag: Duration,
    /// `true` (default): a channel is scoped by tenant. An event published with tenant T to
    /// `orders` and every client of tenant T on `orders` use T's own `orders`
    /// ([`routing::scoped_channel`](crate::routing::scoped_channel)): its own positions
    /// (no id jumps that reveal other tenants' traffic) and its own retention (a noisy tenant
    /// cannot trim a quiet one's history). Untenanted events and clients use the plain
    /// channel; a tenant's clients then do not receive untenanted events of that name
    /// (publish to each tenant instead). `false`: tenants share one channel, its positions
    /// and its retention, and a tenant's clients also receive its untenanted events (the Go
    /// package's behaviour).
    pub tenant_scoped_channels: bool,
    /// Whether the instances share one store or each keep their own history (see
    /// [`History`] for what a resume position means in each). Default [`History::Shared`].
    pub history: History,
    /// In [`History::PerInstance`] mode, how long the instance keeps listening to a channel
    /// after its last local client left, so that a client reconnecting within it resumes
    /// exactly (after it, a resume gets an `epoch_changed` gap). Only a channel that has
    /// handed out a position lingers. Ignored in [`History::Shared`] mode. Default 60 s.
    pub history_linger: Duration,
    /// In [`History::PerInstance`] mode, how many channels may linger at once. When all are
    /// taken, a channel that starts lingering ends the oldest lingering channel of the tenant
    /// that holds the most (its own, if it holds the most): a tenant churning through
    /// channels displaces its own, never a quieter tenant's. Without
    /// [`tenant_scoped_channels`](Self::tenant_scoped_channels) every channel counts as one
    /// tenant's and the oldest lingering channel ends. Default 10,000.
    pub max_lingering_channels: usize,
}

/// What the manager does with a client that does not keep up: its queue of
/// [`client_buffer`](ManagerConfig::client_buffer) messages is full, or its oldest queued
/// event is [`max_lag`](ManagerConfig::max_lag) older than the newest.
///
/// The Go package's `DropOnBackpressure = true` disconnected such a client; there,
/// `false` kept it. The variants say what happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Close the client with [`CloseReason::SlowConsumer`](crate::CloseReason::SlowConsumer)
    /// (SSE: the stream ends; WebSocket: close code 1013). It reconnects and resumes exactly
    /// from its last id — nothing is lost while the history holds. The default.
    #[default]
    Disconnect,
    /// Keep the client; the events it has no room for are skipped, and before its next
    /// message it receives a `dropped` gap naming the channel and the newest skipped
    /// position (it may read the skipped events back from the history).
    SkipWithGap,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            instance_id: format!("rt-{:016x}", crate::Epoch::fresh().0),
            max_connections: 10_000,
            client_buffer: 256,
            replay_limit: 1_000,
            replay_max_bytes: 16 << 20,
            slow_consumer: SlowConsumer::Disconnect,
            backlog_on_connect: 0,
            replay_tail_after_gap: false,
            max_channels_per_client: 32,
            max_channel_len: 128,
            max_event_bytes: 1 << 20,
            broadcast_retry: Duration::from_secs(30),
            subscribe_timeout: Duration::from_secs(10),
            repair_patience: Duration::from_secs(2),
            max_lag: Duration::from_secs(30),
            tenant_scoped_channels: true,
            history: History::Shared,
            history_linger: Duration::from_secs(60),
            max_lingering_channels: 10_000,
        }
    }
}

impl ManagerConfig {
    /// Checks every field; [`ManagerBuilder::build`](crate::ManagerBuilder::build) calls it.
    pub fn validate(&self) -> Result<()> {
        let positive = |field, value: usize| {
            if value == 0 {
                Err(Error::invalid_config(field, "must be at least 1"))
            } else {
                Ok(())
            }
        };
        if self.instance_id.is_empty() || self.instance_id.chars().any(char::is_control) {
            return Err(Error::invalid_config(
                "instance_id",
                "must be non-empty printable text",
            ));
        }
        positive("max_connections", self.max_connections)?;
        positive("client_buffer", self.client_buffer)?;
        positive("replay_limit", self.replay_limit)?;
        positive("replay_max_bytes", self.replay_max_bytes)?;
        positive("max_channels_per_client", self.max_channels_per_client)?;
        positive("max_channel_len", self.max_channel_len)?;
        positive("max_event_bytes", self.max_event_bytes)?;
        positive("max_lingering_channels", self.max_lingering_channels)?;
        if self.backlog_on_connect > self.replay_limit {
            return Err(Error::invalid_config(
                "backlog_on_connect",
                "must not exceed replay_limit",
            ));
        }
        if self.max_lag < Duration::from_millis(1) {
            return Err(Error::invalid_config("max_lag", "must be at least 1 ms"));
        }
        if self.subscribe_timeout < Duration::from_millis(1) {
            return Err(Error::invalid_config(
                "subscribe_timeout",
                "must be at least 1 ms",
            ));
        }
        Ok(())
    }
}
