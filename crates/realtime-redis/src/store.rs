//! The Redis Streams store.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use realtime_core::{
    Bus, Epoch, Error, Event, GapReason, NewEvent, Position, PublishTarget, ReadResult, Result,
    Store,
};
use redis::Value;

use crate::codec::{self, decode_error};
use crate::config::{RedisStoreConfig, redact};
use crate::connection::{Commands, connect};
use crate::error::{failed, once_more, reconnectable};
use crate::reply::{entry, entry_offset, epoch_of, int_of};
use crate::scripts::{self, StoreScript};

/// Replay history in Redis Streams, one stream and one small hash per channel.
///
/// Keys are `<prefix>{<channel>}:s` (the stream) and `<prefix>{<channel>}:m` (epoch and
/// offset counter); the `{channel}` hash tag keeps both on one Redis Cluster slot, so each
/// script touches one slot.
pub struct RedisStore {
    config: RedisStoreConfig,
    /// The server, as a bus's [`PublishTarget::server`] names it (computed once).
    server: String,
    connection: Commands,
    append: StoreScript,
    read: StoreScript,
    closed: AtomicBool,
}

impl RedisStore {
    /// Connects to the server in `config` (validated first).
    pub async fn connect(config: RedisStoreConfig) -> Result<Self> {
        config.validate()?;
        let connection = connect(config.endpoint(), config.max_connections).await?;
        let store = RedisStore {
            server: crate::config::server_of_endpoint(&config.endpoint()),
            config,
            connection,
            append: StoreScript::new(scripts::APPEND),
            read: StoreScript::new(scripts::READ),
            closed: AtomicBool::new(false),
        };
        match store.check_server().await {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!(url = %redact(&store.config.url), "{warning}");
                }
            }
            Err(error) => {
                tracing::debug!(%error, "cannot read the server's settings (CONFIG GET refused?)");
            }
        }
        Ok(store)
    }

    /// Reads the server settings history depends on and says what is wrong with them.
    ///
    /// With `maxmemory` set, any eviction policy but `noeviction` may drop a channel's keys
    /// (they carry a TTL, so `volatile-*` policies pick them too): an evicted stream turns
    /// resumes into `trimmed` gaps and an evicted meta hash into `epoch_changed` gaps, never
    /// into a wrong replay, but history is lost. `connect` logs each finding as a warning.
    pub async fn check_server(&self) -> Result<Vec<String>> {
        let (max_memory, policy): (Vec<String>, Vec<String>) = redis::pipe()
            .cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed("config get", None))?;
        let mut warnings = Vec::new();
        let max_memory = max_memory.get(1).map_or("0", String::as_str);
        let policy = policy.get(1).map_or("noeviction", String::as_str);
        if max_memory != "0" && policy != "noeviction" {
            warnings.push(format!(
                "Redis evicts keys under memory pressure (maxmemory {max_memory}, \
                 maxmemory-policy {policy}): evicted channels lose their history and clients \
                 get gaps; set maxmemory-policy noeviction (publishes then fail when full)"
            ));
        }
        Ok(warnings)
    }

    /// The configuration.
    pub fn config(&self) -> &RedisStoreConfig {
        &self.config
    }

    /// The meta hash and stream keys of `channel` (a third, `<prefix>{<channel>}:k`, indexes
    /// idempotency keys).
    pub fn keys(&self, channel: &str) -> (String, String) {
        let base = format!("{}{{{channel}}}", self.config.prefix);
        (format!("{base}:m"), format!("{base}:s"))
    }

    /// Deletes `channel`'s history (its stream, epoch and idempotency index): its next
    /// append starts a new epoch, and a client resuming from an old id gets a gap. For an
    /// operator clearing a channel, or a test standing in for a lost key.
    pub async fn forget(&self, channel: &str) -> Result<()> {
        self.check_open()?;
        let (meta_key, stream_key) = self.keys(channel);
        let index_key = self.index_key(channel);
        once_more(reconnectable, || {
            let mut connection = self.connection.clone();
            let (meta_key, stream_key, index_key) = (&meta_key, &stream_key, &index_key);
            async move {
                redis::cmd("DEL")
                    .arg(meta_key)
                    .arg(stream_key)
                    .arg(index_key)
                    .query_async::<()>(&mut connection)
                    .await
            }
        })
        .await
        .map_err(|e| failed("forget", Some(channel))(e).into())
    }

    /// Whether this store's server is the one `target` publishes on (so the append script
    /// can PUBLISH exactly as the bus would).
    fn publishes_for(&self, target: &PublishTarget) -> bool {
        target.backend == "redis" && target.server == self.server
    }

    /// The channel's index of idempotency keys (a sorted set by offset).
    fn index_key(&self, channel: &str) -> String {
        format!("{}{{{channel}}}:k", self.config.prefix)
    }

    /// Runs the append script; `pubsub_channel` non-empty also publishes there.
    async fn append_script(&self, event: NewEvent, pubsub_channel: &str) -> Result<Event> {
        self.check_open()?;
        let (meta_key, stream_key) = self.keys(&event.channel);
        let meta = codec::encode_meta(&event);
        let index_key = self.index_key(&event.channel);
        // The cluster client re-sends a command whose connection dropped after it was sent,
        // which could run the append twice: on a cluster every append carries a key (one of
        // its own if the publisher gave none), so a second run finds it and appends nothing.
        let idempotency_key = match (&event.idempotency_key, self.config.cluster) {
            (Some(key), _) => Some(key.clone()),
            (None, true) => Some(format!(
                "\u{1}{:016x}{:016x}",
                Epoch::fresh().0,
                Epoch::fresh().0
            )),
            (None, false) => None,
        };
        let mut invocation = self.append.call();
        invocation
            .key(meta_key)
            .key(stream_key)
            .key(index_key)
            .arg(format!("{:x}", Epoch::fresh().0))
            .arg(self.config.max_events_per_channel)
            .arg(self.ttl_ms())
            .arg(meta)
            .arg(event.data.as_ref())
            .arg(pubsub_channel)
            .arg(if self.config.detect_restarts {
                "1"
            } else {
                "0"
            })
            .arg(idempotency_key.as_deref().unwrap_or_default())
            .arg(if self.config.cluster {
                "SPUBLISH"
            } else {
                "PUBLISH"
            });
        // Only a refused connection is retried: the script was certainly not run then.
        let (epoch, offset): (String, u64) =
            once_more(redis::RedisError::is_connection_refusal, || {
                let (invocation, mut connection) = (&invocation, self.connection.clone());
                async move { invocation.invoke(&mut connection).await }
            })
            .await
            .map_err(failed("append", Some(event.channel.as_str())))?;
        let epoch = u64::from_str_radix(&epoch, 16).map_err(|_| decode_error("bad epoch"))?;
        Ok(event.into_event(Position::new(Epoch(epoch), offset)))
    }

    fn ttl_ms(&self) -> u64 {
        self.config.idle_ttl.as_millis().max(1) as u64
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Store for RedisStore {
    fn reach(&self) -> realtime_core::Reach {
        realtime_core::Reach::Network
    }

    async fn append(&self, event: NewEvent) -> Result<Event> {
        self.append_script(event, "").await
    }

    fn publishes_to(&self, bus: &dyn Bus) -> bool {
        bus.publish_target("")
            .is_some_and(|t| self.publishes_for(&t))
    }

    async fn append_and_publish(&self, event: NewEvent, bus: &dyn Bus) -> Result<Event> {
        match bus
            .publish_target(&event.channel)
            .filter(|t| self.publishes_for(t))
        {
            Some(target) => self.append_script(event, &target.channel).await,
            None => {
                let stored = self.append(event).await?;
                match bus.publish(&stored, realtime_core::Origin::UNKNOWN).await {
                    Ok(()) => Ok(stored),
                    Err(error) => Err(Error::not_broadcast(stored, error)),
                }
            }
        }
    }

    async fn read(&self, channel: &str, after: Position, limit: usize) -> Result<ReadResult> {
        self.check_open()?;
        let (meta_key, stream_key) = self.keys(channel);
        // One atomic round trip that writes nothing but TTLs of keys that exist: refresh
        // them, read epoch and head, the oldest entry, and — only when the resume can
        // succeed — the entries after `after`. A script (not a MULTI pipeline, which cannot
        // decide) so that a wrong epoch or an out-of-range offset costs Redis O(1): the
        // pipeline read and sent up to `limit` entries that were then thrown away for a gap.
        // Routed by its keys on a cluster too.
        let after_epoch = if after.epoch != Epoch::NONE {
            format!("{:x}", after.epoch.0)
        } else if after.offset == 0 {
            "*".to_owned()
        } else {
            String::new()
        };
        let mut invocation = self.read.call();
        invocation
            .key(&meta_key)
            .key(&stream_key)
            .key(self.index_key(channel))
            .arg(self.ttl_ms())
            .arg(after.offset)
            .arg(limit)
            .arg(after_epoch);
        let reply = once_more(reconnectable, || {
            let (invocation, mut connection) = (&invocation, self.connection.clone());
            async move { invocation.invoke(&mut connection).await }
        })
        .await;
        // A read changes nothing but TTLs: any dropped or refused connection was retried.
        let (meta, first, entries): (Vec<Value>, Vec<Value>, Vec<Value>) =
            reply.map_err(failed("read", Some(channel)))?;
        let [epoch, head] = meta.as_slice() else {
            return Err(decode_error("meta reply shape").into());
        };
        if matches!(epoch, Value::Nil) {
            // No history (never written, expired, or its meta evicted: a stream left without
            // it is stale and the next append clears it).
            let head = Position::start(Epoch::NONE);
            return Ok(ReadResult {
                events: Vec::new(),
                head,
                oldest: 1,
                gap: ReadResult::gap_for(after, head, 1, limit),
            });
        }
        let epoch = epoch_of(epoch)?;
        let head_offset = match head {
            Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|t| t.parse().ok()),
            other => int_of(other).ok(),
        }
        .ok_or_else(|| decode_error("bad offset counter"))?;
        let head = Position::new(epoch, head_offset);
        let oldest = match first.first() {
            Some(first) => entry_offset(first)?,
            None => head_offset + 1,
        };
        let gap = ReadResult::gap_for(after, head, oldest, limit);
        let events = if matches!(gap, None | Some(GapReason::Limit)) && limit > 0 {
            entries
                .iter()
                .map(|v| entry(channel, epoch, v))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        Ok(ReadResult {
            events,
            head,
            oldest,
            gap,
        })
    }

    async fn head(&self, channel: &str) -> Result<Position> {
        // A read with no limit: only the head comes back.
        Ok(self
            .read(channel, Position::start(Epoch::NONE), 0)
            .await?
            .head)
    }

    async fn check(&self) -> Result<()> {
        self.check_open()?;
        once_more(reconnectable, || {
            let mut connection = self.connection.clone();
            async move { redis::cmd("PING").query_async::<()>(&mut connection).await }
        })
        .await
        .map_err(|e| failed("ping", None)(e).into())
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
