//! The multiplexed command connection the store and the bus's publisher use: to one server,
//! or to a Redis Cluster (commands routed by their keys' slot).

use std::sync::Arc;
use std::time::Duration;

use realtime_core::Result;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::io::tcp::{TcpSettings, socket2};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::cluster::{Build, Cluster};
use crate::error::connect_failed;

/// What the store's and the bus's configurations say about reaching Redis.
#[derive(Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    pub(crate) url: &'a str,
    /// The CA to trust for `rediss://`, instead of the system's roots.
    pub(crate) root: Option<&'a [u8]>,
    /// `url` is a node of a Redis Cluster.
    pub(crate) cluster: bool,
    pub(crate) timeout: Duration,
}

impl Endpoint<'_> {
    /// A client of one server, trusting only `root` for TLS when given.
    pub(crate) fn client(&self, url: &str) -> RedisResult<redis::Client> {
        match self.root {
            None => redis::Client::open(url),
            Some(root) => redis::Client::build_with_tls(url, certificates(root)),
        }
    }

    /// A cluster client discovering the nodes from `seeds` (`url` and the nodes seen since),
    /// with this endpoint's timeouts and TLS roots.
    pub(crate) fn cluster_builder(&self, seeds: &[String]) -> ClusterClientBuilder {
        // A node whose host died or is cut off answers nothing and drops nothing: keepalive
        // probes end its connections within about 10 s, which makes the client look again.
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(4))
            .with_interval(Duration::from_secs(2))
            .with_retries(3);
        let mut builder = ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .tcp_settings(TcpSettings::default().set_keepalive(keepalive))
            .retries(2);
        if let Some(root) = self.root {
            builder = builder.certs(certificates(root));
        }
        builder
    }
}

/// The owned parts of an endpoint, for building cluster clients again later.
pub(crate) struct Owned {
    url: String,
    root: Option<Vec<u8>>,
    timeout: Duration,
}

impl Owned {
    pub(crate) fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            url: &self.url,
            root: self.root.as_deref(),
            cluster: true,
            timeout: self.timeout,
        }
    }
}

impl Endpoint<'_> {
    pub(crate) fn to_owned(self) -> Owned {
        Owned {
            url: self.url.to_owned(),
            root: self.root.map(<[u8]>::to_vec),
            timeout: self.timeout,
        }
    }
}

fn certificates(root: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root.to_vec()),
    }
}

/// A command connection, cheap to clone (clones share it).
#[derive(Clone)]
pub(crate) enum Commands {
    Single(ConnectionManager),
    Cluster(Arc<Cluster>),
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Commands::Single(connection) => connection.req_packed_command(cmd),
            Commands::Cluster(cluster) => {
                let mut connection = cluster.connection();
                Box::pin(async move {
                    let result = connection.req_packed_command(cmd).await;
                    if let Err(error) = &result {
                        cluster.failed(error);
                    }
                    result
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Commands::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Commands::Cluster(cluster) => {
                let mut connection = cluster.connection();
                Box::pin(async move {
                    let result = connection
                        .req_packed_commands(pipeline, offset, count)
                        .await;
                    if let Err(error) = &result {
                        cluster.failed(error);
                    }
                    result
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Commands::Single(connection) => connection.get_db(),
            Commands::Cluster(cluster) => cluster.connection().get_db(),
        }
    }
}

/// Refuses a server that is a Redis Cluster node when the configuration says it is not: every
/// command would otherwise fail with MOVED for most channels, a retryable error forever. (A
/// server that refuses `INFO` is let be.)
async fn check_mode(endpoint: Endpoint<'_>, commands: &mut Commands) -> Result<()> {
    if endpoint.cluster {
        return Ok(());
    }
    let info = redis::cmd("INFO")
        .arg("cluster")
        .query_async::<String>(commands)
        .await;
    if info.is_ok_and(|info| info.contains("cluster_enabled:1")) {
        return Err(realtime_core::Error::InvalidConfig {
            field: "cluster",
            reason: "the server is a Redis Cluster node: set cluster = true".into(),
        });
    }
    Ok(())
}

/// Connects the command connection: at most `in_flight` commands outstanding on one server's
/// connection (a cluster keeps one multiplexed connection per node).
pub(crate) async fn connect(endpoint: Endpoint<'_>, in_flight: usize) -> Result<Commands> {
    let url = endpoint.url;
    if endpoint.cluster {
        let owned = endpoint.to_owned();
        let build: Build = Arc::new(move |seeds| {
            owned
                .endpoint()
                .cluster_builder(seeds)
                .connection_concurrency_limit(in_flight)
                .build()
        });
        let cluster = Cluster::connect(url, endpoint.timeout, "commands", build)
            .await
            .map_err(|e| connect_failed(url, e))?;
        return Ok(Commands::Cluster(cluster));
    }
    let client = endpoint.client(url).map_err(|e| connect_failed(url, e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(endpoint.timeout))
        .set_response_timeout(Some(endpoint.timeout))
        .set_concurrency_limit(in_flight)
        .set_number_of_retries(2);
    let mut commands = client
        .get_connection_manager_with_config(config)
        .await
        .map(Commands::Single)
        .map_err(|e| connect_failed(url, e))?;
    check_mode(endpoint, &mut commands).await?;
    Ok(commands)
}
