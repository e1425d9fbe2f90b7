//! Redis Cluster connections that find their way again after a node hangs.
//!
//! redis-rs's cluster client reads the cluster's slot map again only when a node answers
//! MOVED or a connection drops. A master that hangs (a stopped process, a frozen VM) does
//! neither: its connections stay open, every command for its slots times out — still after
//! the cluster promoted its replica — and its shard subscriptions go silent. So a command
//! that times out (or whose connection fails) makes the connection PING every master; when
//! one does not answer, a new cluster connection is built from every node seen so far (the
//! configured one may be the hung one) and replaces it once it works.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
use redis::{RedisError, RedisResult, Value};

/// Counts cluster connections rebuilt after a node stopped answering, by `use`
/// (`commands` or `subscriber`).
pub const CLUSTER_REBUILDS: &str = "realtime_redis_cluster_rebuilds_total";

/// The longest pause between two checks of the masters while rebuilds fail.
const MAX_CHECK_PAUSE: Duration = Duration::from_secs(30);

/// Makes a cluster client that discovers the cluster from these node URLs.
pub(crate) type Build = Arc<dyn Fn(&[String]) -> RedisResult<ClusterClient> + Send + Sync>;

/// A cluster connection (shared; commands clone the current one) and how to replace it.
pub(crate) struct Cluster {
    connection: RwLock<ClusterConnection>,
    build: Build,
    /// The configured URL, then every node the cluster named.
    seeds: Mutex<Vec<String>>,
    timeout: Duration,
    /// A check (and maybe a rebuild) is under way.
    checking: AtomicBool,
    /// No check starts before this: while the cluster is down every command fails at once,
    /// and checks must not turn into a connection storm.
    next_check: Mutex<Instant>,
    /// Rebuilds that failed in a row (they back the checks off, and quieten the logs).
    failed_rebuilds: AtomicU32,
    /// For logs and metrics: what the connection is for.
    role: &'static str,
}

impl Cluster {
    /// Connects from `url` and learns the other nodes' addresses.
    pub(crate) async fn connect(
        url: &str,
        timeout: Duration,
        role: &'static str,
        build: Build,
    ) -> RedisResult<Arc<Cluster>> {
        let seeds = vec![url.to_owned()];
        let connection = build(&seeds)?.get_async_connection().await?;
        let cluster = Arc::new(Cluster {
            connection: RwLock::new(connection),
            build,
            seeds: Mutex::new(seeds),
            timeout,
            checking: AtomicBool::new(false),
            next_check: Mutex::new(Instant::now()),
            failed_rebuilds: AtomicU32::new(0),
            role,
        });
        cluster.learn_nodes().await;
        Ok(cluster)
    }

    /// The current connection (a clone shares it).
    pub(crate) fn connection(&self) -> ClusterConnection {
        self.connection.read().clone()
    }

    /// Whether every master this connection is connected to answers a PING within the
    /// timeout.
    ///
    /// # Behavior
    /// `false` while a master it holds a connection to is hung or its connection is being
    /// re-established, including one whose slots a replica took over that this connection
    /// has not heard of yet (which is what makes it worth rebuilding). A master it could not
    /// connect to at all is not asked: redis-rs sends that master's slots elsewhere (its
    /// replica, or a node that answers MOVED and so refreshes the slot map).
    pub(crate) async fn masters_answer(&self) -> bool {
        let mut connection = self.connection();
        let ping = connection.route_command(
            redis::cmd("PING"),
            RoutingInfo::MultiNode((
                MultipleNodeRoutingInfo::AllMasters,
                Some(ResponsePolicy::AllSucceeded),
            )),
        );
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }

    /// A command on this connection failed with `error`: if a node may be hung or gone,
    /// checks the masters in the background and rebuilds the connection if one does not
    /// answer.
    ///
    /// # Behavior
    /// One check at a time, at least one timeout apart, backing off to [`MAX_CHECK_PAUSE`]
    /// while rebuilds fail (a cluster wholly down fails every command at once).
    pub(crate) fn failed(self: &Arc<Self>, error: &RedisError) {
        let suspicious = error.is_timeout()
            || error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal();
        if !suspicious || self.checking.swap(true, Ordering::AcqRel) {
            return;
        }
        if Instant::now() < *self.next_check.lock() {
            self.checking.store(false, Ordering::Release);
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if !this.masters_answer().await {
                this.rebuild().await;
            }
            let streak = this.failed_rebuilds.load(Ordering::Acquire).min(5);
            let pause = (this.timeout * 2u32.pow(streak)).min(MAX_CHECK_PAUSE);
            *this.next_check.lock() = Instant::now() + pause;
            this.checking.store(false, Ordering::Release);
        });
    }

    /// Replaces the connection with one discovering the cluster anew from every node seen.
    ///
    /// # Behavior
    /// `true` once replaced (commands then go where the new slot map says; subscriptions
    /// made on the old connection end with it: the caller subscribes again); `false`, the
    /// old connection kept, when no seed answered within a few timeouts.
    pub(crate) async fn rebuild(&self) -> bool {
        let seeds = self.seeds.lock().clone();
        let connect = async { (self.build)(&seeds)?.get_async_connection().await };
        // A hung seed costs one connection timeout (seeds are tried together); the slot map
        // is then read from a node that answers.
        let error = match tokio::time::timeout(self.timeout * 3, connect).await {
            Ok(Ok(connection)) => {
                *self.connection.write() = connection;
                self.failed_rebuilds.store(0, Ordering::Release);
                tracing::warn!(
                    role = self.role,
                    "a Redis Cluster master did not answer: connection rebuilt from the nodes seen"
                );
                metrics::counter!(CLUSTER_REBUILDS, "use" => self.role).increment(1);
                self.learn_nodes().await;
                return true;
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no node answered in time".to_owned(),
        };
        // Said once per streak: while the cluster is down, every probe would repeat it.
        if self.failed_rebuilds.fetch_add(1, Ordering::AcqRel) == 0 {
            tracing::warn!(role = self.role, %error, "cannot rebuild the Redis Cluster connection yet");
        } else {
            tracing::debug!(role = self.role, %error, "cannot rebuild the Redis Cluster connection yet");
        }
        false
    }

    /// Remembers every node's address (`CLUSTER NODES`) as a seed for a later rebuild.
    async fn learn_nodes(&self) {
        let mut connection = self.connection();
        let mut command = redis::cmd("CLUSTER");
        command.arg("NODES");
        let nodes = connection.route_command(
            command,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
        );
        let Ok(Ok(reply)) = tokio::time::timeout(self.timeout, nodes).await else {
            return;
        };
        let Some(text) = text_of(&reply) else { return };
        let mut seeds = self.seeds.lock();
        let configured = seeds[0].clone();
        seeds.truncate(1);
        for address in node_addresses(&text) {
            if let Some(url) = with_address(&configured, &address)
                && !seeds.contains(&url)
            {
                seeds.push(url);
            }
        }
    }
}

fn text_of(reply: &Value) -> Option<String> {
    match reply {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// The `host:port` of every node in a `CLUSTER NODES` reply: its announced hostname when it
/// has one (what a TLS certificate names), else its address.
fn node_addresses(nodes: &str) -> impl Iterator<Item = String> + '_ {
    nodes.lines().filter_map(|line| {
        // `<id> <ip:port@bus-port[,hostname]> <flags> …`
        let field = line.split_whitespace().nth(1)?;
        let (address, rest) = field.split_once('@').unwrap_or((field, ""));
        let (ip, port) = address.rsplit_once(':')?;
        if port.is_empty() || port == "0" {
            return None;
        }
        match rest.split_once(',').map(|(_, hostname)| hostname) {
            Some(hostname) if !hostname.is_empty() => Some(format!("{hostname}:{port}")),
            _ if !ip.is_empty() => Some(address.to_owned()),
            _ => None,
        }
    })
}

/// `url` with its `host:port` replaced by `address` (scheme, credentials and options kept:
/// every node of a cluster takes the same).
fn with_address(url: &str, address: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let userinfo = authority.rsplit_once('@').map(|(userinfo, _)| userinfo);
    let (host, port) = address.rsplit_once(':')?;
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Some(match userinfo {
        Some(userinfo) => format!("{scheme}://{userinfo}@{host}:{port}{tail}"),
        None => format!("{scheme}://{host}:{port}{tail}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_keep_the_configured_scheme_credentials_and_options() {
        assert_eq!(
            with_address("rediss://u:p@a:1/0?protocol=resp3", "10.0.0.2:7001").as_deref(),
            Some("rediss://u:p@10.0.0.2:7001/0?protocol=resp3")
        );
        assert_eq!(
            with_address("redis://a:1", "::1:7002").as_deref(),
            Some("redis://[::1]:7002")
        );
        assert_eq!(
            with_address("rediss://a:1#insecure", "b:2").as_deref(),
            Some("rediss://b:2#insecure")
        );
        assert_eq!(with_address("not a url", "a:1"), None);
    }

    #[test]
    fn node_addresses_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected
e7d1 127.0.0.1:30001@40001,host-a myself,master - 0 0 1 connected 0-5460
9f2a :0@0 master,fail,noaddr - 1 1 2 disconnected
";
        assert_eq!(
            node_addresses(nodes).collect::<Vec<_>>(),
            ["127.0.0.1:30004", "host-a:30001"]
        );
    }
}
