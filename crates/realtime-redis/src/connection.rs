//! The multiplexed command connection the store and the bus's publisher use.

use realtime_core::Result;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::connect_failed;

pub(crate) async fn connect(
    url: &str,
    timeout: std::time::Duration,
    in_flight: usize,
) -> Result<ConnectionManager> {
    let client = redis::Client::open(url).map_err(|e| connect_failed(url, e))?;
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
