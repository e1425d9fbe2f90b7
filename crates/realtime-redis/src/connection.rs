//! The multiplexed command connection the store and the bus's publisher use.

use realtime_core::Result;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::connect_failed;

/// A client of `url`, trusting only `root` for TLS when given (the system's roots otherwise).
pub(crate) fn client(url: &str, root: Option<&[u8]>) -> redis::RedisResult<redis::Client> {
    match root {
        None => redis::Client::open(url),
        Some(root) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root.to_vec()),
            },
        ),
    }
}

pub(crate) async fn connect(
    url: &str,
    root: Option<&[u8]>,
    timeout: std::time::Duration,
    in_flight: usize,
) -> Result<ConnectionManager> {
    let client = client(url, root).map_err(|e| connect_failed(url, e))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_concurrency_limit(in_flight)
        .set_number_of_retries(2);
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(|e| connect_failed(url, e).into())
}
