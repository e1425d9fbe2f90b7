//! The subscriber connection: classic pub/sub on one server, sharded pub/sub on a cluster.
//!
//! On a cluster a channel's messages are published with `SPUBLISH` to the shard that owns
//! its slot and read with `SSUBSCRIBE` from that shard, so each node carries only its own
//! channels' traffic (classic `PUBLISH` is copied to every node of a cluster). The
//! pub/sub channel is named with the channel's hash tag, `<prefix>\x1f{<channel>}`, so it
//! lives in the same slot as the channel's keys and the append script can `SPUBLISH` it.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{AsyncPushSender, ConnectionManager, ConnectionManagerConfig};
use redis::{ProtocolVersion, RedisResult};

use crate::cluster::{Build, Cluster};
use crate::connection::Endpoint;

/// The pub/sub names of a bus: prefix and form.
#[derive(Clone)]
pub(crate) struct Names {
    /// `<prefix>` and a unit separator, which cannot occur in a prefix or channel name.
    prefix: String,
    sharded: bool,
}

impl Names {
    pub(crate) fn new(prefix: &str, sharded: bool) -> Names {
        Names {
            prefix: format!("{prefix}\u{1f}"),
            sharded,
        }
    }

    /// The pub/sub channel of an event channel.
    pub(crate) fn redis_channel(&self, channel: &str) -> String {
        if self.sharded {
            format!("{}{{{channel}}}", self.prefix)
        } else {
            format!("{}{channel}", self.prefix)
        }
    }

    /// The event channel of a pub/sub channel of this bus.
    pub(crate) fn channel<'a>(&self, redis_channel: &'a str) -> Option<&'a str> {
        let rest = redis_channel.strip_prefix(&self.prefix)?;
        if self.sharded {
            rest.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(rest)
        }
    }

    /// The command that publishes to a pub/sub channel.
    pub(crate) fn publish_command(&self) -> &'static str {
        if self.sharded { "SPUBLISH" } else { "PUBLISH" }
    }
}

/// A subscriber connection (clones share it).
#[derive(Clone)]
pub(crate) enum Subscriber {
    Single(ConnectionManager),
    Cluster(Arc<Cluster>),
}

impl Subscriber {
    pub(crate) async fn subscribe(&mut self, name: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(connection) => connection.subscribe(name).await,
            Subscriber::Cluster(cluster) => cluster.connection().ssubscribe(name).await,
        }
    }

    pub(crate) async fn unsubscribe(&mut self, name: &str) -> RedisResult<()> {
        match self {
            Subscriber::Single(connection) => connection.unsubscribe(name).await,
            Subscriber::Cluster(cluster) => cluster.connection().sunsubscribe(name).await,
        }
    }

    /// Whether the server answers a PING within `timeout` — on a cluster, every master
    /// (one that hangs leaves its shard subscriptions silent without dropping them).
    pub(crate) async fn answers(&mut self, timeout: Duration) -> bool {
        match self {
            Subscriber::Single(connection) => {
                let command = redis::cmd("PING");
                let ping = command.query_async::<()>(connection);
                matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(())))
            }
            Subscriber::Cluster(cluster) => cluster.masters_answer().await,
        }
    }
}

/// Makes subscriber connections (RESP3, pushes to one sender), again after a failure.
#[expect(clippy::large_enum_variant, reason = "one per bus")]
pub(crate) enum Subscribers {
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    Cluster {
        url: String,
        timeout: Duration,
        build: Build,
    },
}

impl Subscribers {
    pub(crate) fn new(
        endpoint: Endpoint<'_>,
        push: impl AsyncPushSender + Clone,
    ) -> RedisResult<Subscribers> {
        if endpoint.cluster {
            let owned = endpoint.to_owned();
            let build: Build = Arc::new(move |seeds| {
                owned
                    .endpoint()
                    .cluster_builder(seeds)
                    .use_protocol(ProtocolVersion::RESP3)
                    .push_sender(push.clone())
                    .build()
            });
            return Ok(Subscribers::Cluster {
                url: endpoint.url.to_owned(),
                timeout: endpoint.timeout,
                build,
            });
        }
        let url = with_resp3(endpoint.url);
        let client = endpoint.client(&url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(endpoint.timeout))
            .set_response_timeout(Some(endpoint.timeout))
            .set_number_of_retries(2)
            .set_automatic_resubscription()
            .set_push_sender(push);
        Ok(Subscribers::Single { client, config })
    }

    /// A connection, connected now.
    pub(crate) async fn connect(&self) -> RedisResult<Subscriber> {
        match self {
            Subscribers::Single { client, config } => client
                .get_connection_manager_with_config(config.clone())
                .await
                .map(Subscriber::Single),
            Subscribers::Cluster {
                url,
                timeout,
                build,
            } => Cluster::connect(url, *timeout, "subscriber", build.clone())
                .await
                .map(Subscriber::Cluster),
        }
    }

    /// A connection that connects on first use, to replace one that stopped answering; none
    /// on a cluster, whose connection is rebuilt in place ([`Cluster::rebuild`]).
    pub(crate) fn lazy(&self) -> Option<RedisResult<Subscriber>> {
        match self {
            Subscribers::Single { client, config } => Some(
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map(Subscriber::Single),
            ),
            Subscribers::Cluster { .. } => None,
        }
    }
}

fn with_resp3(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}protocol=resp3")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharded_names_carry_the_channel_hash_tag() {
        let classic = Names::new("rt:", false);
        let sharded = Names::new("rt:", true);
        assert_eq!(classic.redis_channel("a/b"), "rt:\u{1f}a/b");
        assert_eq!(sharded.redis_channel("a/b"), "rt:\u{1f}{a/b}");
        assert_eq!(sharded.channel("rt:\u{1f}{a/b}"), Some("a/b"));
        assert_eq!(classic.channel("rt:\u{1f}a/b"), Some("a/b"));
        assert_eq!(sharded.channel("other:\u{1f}{a}"), None);
        assert_eq!(sharded.channel("rt:\u{1f}a"), None);
    }
}
