//! The topic and the client settings: creating the topic when it is missing, reading its
//! partition count, and what every connection to the brokers shares.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer as _;
use rdkafka::error::RDKafkaErrorCode;
use realtime_core::{BackendError, BackendErrorKind, Result};

use crate::config::KafkaBusConfig;
use crate::error::{connect_failed, failed, timed_out};
use crate::hooks::Hooks;
use crate::security;
use crate::watch::{Consumer, OffThread, serve_events};

/// The client settings every connection of `config` shares.
pub(crate) fn client_config(config: &KafkaBusConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set(
            "socket.timeout.ms",
            millis(config.operation_timeout.max(Duration::from_secs(10))),
        )
        .set("reconnect.backoff.max.ms", "1000");
    security::apply(
        &mut client,
        config.security_protocol(),
        config.tls.as_ref(),
        config.sasl.as_ref(),
    );
    client
}

pub(crate) fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Creates the topic; one that exists already is fine.
pub(crate) async fn create_topic(config: &KafkaBusConfig, hooks: &Hooks) -> Result<()> {
    let admin: AdminClient<Hooks> = client_config(config)
        .create_with_context(hooks.clone())
        .map_err(failed("create_topic", None))?;
    let admin = OffThread::new(admin);
    // -1: the broker's `default.replication.factor`.
    let replication = config.replication.unwrap_or(-1);
    let topic = NewTopic::new(
        &config.topic,
        config.partitions,
        TopicReplication::Fixed(replication),
    );
    let options = AdminOptions::new().request_timeout(Some(config.operation_timeout));
    let created = tokio::time::timeout(
        config.operation_timeout + Duration::from_secs(1),
        admin.create_topics([&topic], &options),
    )
    .await
    .map_err(|_| timed_out("create_topic", None))?
    .map_err(|error| connect_failed(&config.brokers, error, hooks.last_error()))?;
    for result in created {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                let kind = if code == RDKafkaErrorCode::OperationTimedOut
                    || code == RDKafkaErrorCode::RequestTimedOut
                {
                    BackendErrorKind::Timeout
                } else {
                    BackendErrorKind::Protocol
                };
                return Err(BackendError::new(
                    "kafka",
                    kind,
                    format!("kafka create_topic {topic:?} failed: {code}"),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The topic's partition count, creating the topic first when it is missing and
/// [`KafkaBusConfig::create_topic`] says so (with `config.partitions`).
pub(crate) async fn partition_count(consumer: Consumer, config: &KafkaBusConfig) -> Result<i32> {
    let mut missing = match topic_partitions(consumer.clone(), config).await? {
        Ok(count) => return Ok(count),
        Err(why) => why,
    };
    if config.create_topic {
        create_topic(config, consumer.context().hooks()).await?;
        // A cluster's brokers learn of a new topic a moment after it is created.
        let deadline = tokio::time::Instant::now() + config.operation_timeout;
        loop {
            missing = match topic_partitions(consumer.clone(), config).await? {
                Ok(count) => return Ok(count),
                Err(why) => why,
            };
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Err(BackendError::new(
        "kafka",
        BackendErrorKind::Config,
        format!(
            "the topic {:?} cannot be used: {missing} (create it, or set create_topic)",
            config.topic
        ),
    )
    .into())
}

/// The topic's partition count from the broker's metadata, or why it has none (missing,
/// not authorized, no leader yet).
/// A blocking call, made off the runtime's threads (any runtime flavour). When the brokers
/// cannot be reached, the error says what librdkafka reported (a certificate it refused,
/// credentials the brokers refused).
async fn topic_partitions(
    consumer: Consumer,
    config: &KafkaBusConfig,
) -> Result<std::result::Result<i32, String>> {
    let (topic, timeout) = (config.topic.clone(), config.operation_timeout);
    let asking = consumer.clone();
    let asked = tokio::task::spawn_blocking(move || asking.fetch_metadata(Some(&topic), timeout));
    let metadata = tokio::time::timeout(timeout + Duration::from_secs(1), asked)
        .await
        .map_err(|_| timed_out("metadata", None))?
        .map_err(|_| timed_out("metadata", None))?;
    let metadata = match metadata {
        Ok(metadata) => metadata,
        Err(error) => {
            // The reasons wait in the consumer's queue until it is polled.
            serve_events(&consumer);
            let hooks = consumer.context().hooks();
            return Err(connect_failed(&config.brokers, error, hooks.last_error()).into());
        }
    };
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == config.topic) else {
        return Ok(Err("it does not exist".into()));
    };
    if let Some(error) = topic.error() {
        return Ok(Err(format!(
            "the brokers say {:?}",
            RDKafkaErrorCode::from(error)
        )));
    }
    match topic.partitions().len() {
        0 => Ok(Err("it does not exist".into())),
        count => Ok(Ok(i32::try_from(count).unwrap_or(i32::MAX))),
    }
}

/// The partition of `channel` among `partitions`: FNV-1a of its name, so every instance
/// (and every version of this crate) agrees.
pub(crate) fn partition_of(channel: &str, partitions: i32) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in channel.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (hash % partitions.max(1) as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::partition_of;

    #[test]
    fn a_channel_has_one_partition_everywhere() {
        assert_eq!(partition_of("orders", 12), partition_of("orders", 12));
        // FNV-1a of "a" is 0xe40c292c.
        assert_eq!(partition_of("a", 1000), (0xe40c_292c_u32 % 1000) as i32);
        assert!((0..7).contains(&partition_of("anything", 7)));
    }
}
