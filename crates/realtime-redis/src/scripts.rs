//! The Lua scripts of the store: one round trip each, atomic on the channel's slot.

use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, ServerErrorKind, ToRedisArgs};

/// The append script: starts a new history (fresh epoch, stream cleared) when the channel has
/// none — or, with restart detection on, when the server is not the one that wrote the
/// channel last (it restarted, was restored, or a replica took over, and may have lost
/// acknowledged writes whose offsets must never be handed out again; a channel whose writer
/// is not recorded, written before detection was on, adopts the current server) —, takes the
/// next
/// offset, adds the entry with id `0-<offset>`, trims exactly, refreshes the TTL, publishes
/// the positioned message when given a pub/sub channel, and returns `{epoch, offset}`.
/// With an idempotency key already in the channel's key index (a sorted set of keys by offset,
/// pruned with the stream), it appends nothing and returns that key's position.
/// KEYS: meta, stream, key index. ARGV: fresh epoch (hex), max len, ttl ms, meta, data,
/// pub/sub channel or empty, `1` to detect restarts, idempotency key or empty, the publish
/// command (`PUBLISH`, or `SPUBLISH` on a cluster, where the pub/sub channel carries the
/// channel's hash tag and so shares its keys' slot).
pub(crate) const APPEND: &str = r"
local run = ''
if ARGV[7] == '1' then
  run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or ''
end
local meta = redis.call('HMGET', KEYS[1], 'e', 'r')
local epoch = meta[1]
local writer = meta[2] or ''
if not epoch or (run ~= '' and writer ~= '' and writer ~= run) then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0, 'r', run)
elseif writer ~= run then
  redis.call('HSET', KEYS[1], 'r', run)
end
if ARGV[8] ~= '' then
  local known = redis.call('ZSCORE', KEYS[3], ARGV[8])
  if known then
    return {epoch, tonumber(known)}
  end
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '0-' .. offset, 'm', ARGV[4], 'd', ARGV[5])
if ARGV[8] ~= '' then
  redis.call('ZADD', KEYS[3], offset, ARGV[8])
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', offset - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
if ARGV[6] ~= '' then
  redis.call(ARGV[9], ARGV[6], 'v1 ' .. epoch .. ' ' .. string.format('%d', offset) .. ' 0\n' .. ARGV[4] .. '\n' .. ARGV[5])
end
return {epoch, offset}
";

/// The read script: refreshes the TTLs of the keys that exist, and returns the meta hash's
/// epoch and offset counter, the oldest entry's id (as an entry without fields), and up to
/// `count` entries after `after` —
/// only when a resume from `after` can succeed: a wrong epoch, a trimmed offset or one past
/// the head is answered with a gap, so it reads no entries (a bad `Last-Event-ID` costs the
/// server O(1), not `count` entries thrown away).
/// KEYS: meta, stream, key index. ARGV: ttl ms, after (offset), count, after's epoch (hex,
/// lowercase, no leading zeros; `*` for any epoch, empty for none).
pub(crate) const READ: &str = r"
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[1])
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local entries = {}
if meta[1] and ARGV[3] ~= '0' then
  local epoch = string.lower((string.gsub(meta[1], '^0+', '')))
  local head = tonumber(meta[2]) or 0
  local oldest = head + 1
  if first[1] then
    oldest = tonumber(string.match(first[1][1], '^0%-(%d+)$')) or oldest
  end
  local after = tonumber(ARGV[2])
  if (ARGV[4] == '*' or ARGV[4] == epoch) and after <= head and after + 1 >= oldest then
    entries = redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[2], '+', 'COUNT', ARGV[3])
  end
end
if first[1] then
  first = {{first[1][1]}}
end
return {meta, first, entries}
";

/// A store script and its SHA1, called by hash and sent whole only when a server lacks it.
pub(crate) struct StoreScript {
    code: &'static str,
    hash: String,
}

impl StoreScript {
    pub(crate) fn new(code: &'static str) -> StoreScript {
        StoreScript {
            code,
            hash: redis::Script::new(code).get_hash().to_owned(),
        }
    }

    /// A call of the script, to give keys and arguments.
    pub(crate) fn call(&self) -> Call<'_> {
        Call {
            script: self,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// One call of a [`StoreScript`].
pub(crate) struct Call<'a> {
    script: &'a StoreScript,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Call<'_> {
    pub(crate) fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub(crate) fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    fn command(&self, name: &str, script: &str) -> Cmd {
        let mut command = redis::cmd(name);
        command
            .arg(script)
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        command
    }

    /// Runs the script on the server of its first key.
    ///
    /// # Behavior
    /// `EVALSHA`; on `NOSCRIPT` (a restarted server, a promoted replica, `SCRIPT FLUSH`) the
    /// script's text with `EVAL`, routed by the same key, which also caches it there. Not
    /// `SCRIPT LOAD`: on a cluster it goes to every node and fails while any one is down.
    pub(crate) async fn invoke<T: FromRedisValue>(
        &self,
        connection: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        let by_hash = self.command("EVALSHA", &self.script.hash);
        match by_hash.query_async(connection).await {
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.command("EVAL", self.script.code)
                    .query_async(connection)
                    .await
            }
            result => result,
        }
    }
}
