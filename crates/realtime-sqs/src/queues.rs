//! The deployment's queues: the client, this instance's queue (created at connect, deleted at
//! close), the others' (listed every discovery interval), liveness tags and the reaper, and
//! the message format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use realtime_core::{BackendError, BackendErrorKind, Error, Result};

use crate::config::{SqsBusConfig, SqsCredentials};
use crate::error::{failed, malformed, timed_out};

/// The tag that says when an instance last marked its queue alive (Unix seconds).
const HEARTBEAT_TAG: &str = "realtime-heartbeat";

/// SQS's largest message body (set on the queue too: queues made before SQS raised its
/// default from 256 KiB, and some local endpoints, still default to the old limit).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// How long SQS keeps a message nobody received, in seconds: an event older than that is of
/// no use to a live client.
pub(crate) const RETENTION_SECS: u64 = 300;

/// A received message older than this (milliseconds) says the instance fell so far behind
/// that SQS may already have dropped messages behind it (they expire at [`RETENTION_SECS`]).
pub(crate) const AT_RISK_AGE_MS: u64 = (RETENTION_SECS - 60) * 1000;

/// Whether a message SQS stamped as sent at `sent_ms` (Unix milliseconds, SQS's clock) and
/// received at `now_ms` (this instance's clock) was old enough that others queued with it may
/// have expired unreceived.
pub(crate) fn at_risk(sent_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(sent_ms) >= AT_RISK_AGE_MS
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The SQS client of `config`.
pub(crate) fn client(config: &SqsBusConfig) -> Result<Client> {
    let credentials = match &config.credentials {
        SqsCredentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.clone(),
            None,
            "realtime-sqs",
        )),
        SqsCredentials::Environment => {
            let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
            else {
                return Err(Error::InvalidConfig {
                    field: "credentials",
                    reason: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into(),
                });
            };
            if var("AWS_SESSION_TOKEN").is_some() {
                tracing::warn!(
                    "temporary AWS credentials from the environment are read once and expire; \
                     SqsCredentials::Provider renews them"
                );
            }
            SharedCredentialsProvider::new(Credentials::new(
                id,
                secret,
                var("AWS_SESSION_TOKEN"),
                None,
                "environment",
            ))
        }
        SqsCredentials::Provider(provider) => provider.clone(),
    };
    // A receive waits up to `wait_time`: its attempts must be allowed longer.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.operation_timeout)
        .operation_attempt_timeout(config.wait_time + config.operation_timeout)
        .operation_timeout(config.wait_time + config.operation_timeout * 2)
        .build();
    let mut builder = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .timeout_config(timeouts);
    if let Some(url) = &config.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    Ok(Client::from_conf(builder.build()))
}

/// Now, in Unix seconds.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `request` within `bound`.
pub(crate) async fn bounded<T>(
    bound: Duration,
    operation: &'static str,
    request: impl std::future::Future<Output = std::result::Result<T, BackendError>>,
) -> std::result::Result<T, BackendError> {
    tokio::time::timeout(bound, request)
        .await
        .unwrap_or_else(|_| Err(timed_out(operation)))
}

/// Creates (or finds again) the queue `name`: FIFO, messages kept [`RETENTION_SECS`], up to
/// [`MAX_BODY`] each, marked alive now. Its URL.
pub(crate) async fn create_queue(
    client: &Client,
    config: &SqsBusConfig,
    name: &str,
) -> std::result::Result<String, BackendError> {
    let request = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::VisibilityTimeout, "30")
        .attributes(
            QueueAttributeName::MessageRetentionPeriod,
            RETENTION_SECS.to_string(),
        )
        .attributes(QueueAttributeName::MaximumMessageSize, MAX_BODY.to_string())
        .tags(HEARTBEAT_TAG, now_secs().to_string());
    let created = bounded(config.operation_timeout, "create_queue", async {
        request.send().await.map_err(failed("create_queue", None))
    })
    .await?;
    created
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| malformed("create_queue", "no queue URL in the answer"))
}

/// This deployment's name for an instance's queue.
pub(crate) fn queue_name(config: &SqsBusConfig, instance: u64) -> String {
    format!("{}{instance:016x}.fifo", config.queue_prefix)
}

/// Whether `url` names a queue of this deployment: exactly the prefix, 16 hex digits and
/// `.fifo` (SQS lists by prefix, so `realtime-` also lists `realtime-staging-…`).
fn is_ours(config: &SqsBusConfig, url: &str) -> bool {
    let name = url.rsplit('/').next().unwrap_or_default();
    name.strip_prefix(config.queue_prefix.as_str())
        .and_then(|rest| rest.strip_suffix(".fifo"))
        .is_some_and(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The URLs of the deployment's queues (this instance's among them), every page, within
/// one discovery interval (a list that takes longer is as good as a failed one).
pub(crate) async fn list(
    client: &Client,
    config: &SqsBusConfig,
) -> std::result::Result<Vec<String>, BackendError> {
    let bound = config.operation_timeout.min(config.discovery_interval);
    bounded(bound, "list_queues", async {
        let mut urls = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let listed = client
                .list_queues()
                .queue_name_prefix(&config.queue_prefix)
                .max_results(1000)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(failed("list_queues", None))?;
            urls.extend(
                listed
                    .queue_urls()
                    .iter()
                    .filter(|url| is_ours(config, url))
                    .cloned(),
            );
            match listed.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(urls),
            }
        }
    })
    .await
}

/// Marks the queue at `url` alive now.
pub(crate) async fn heartbeat(
    client: &Client,
    config: &SqsBusConfig,
    url: &str,
) -> std::result::Result<(), BackendError> {
    let request = client
        .tag_queue()
        .queue_url(url)
        .tags(HEARTBEAT_TAG, now_secs().to_string());
    bounded(config.operation_timeout, "tag_queue", async {
        request
            .send()
            .await
            .map(drop)
            .map_err(failed("tag_queue", None))
    })
    .await
}

/// When the queue at `url` was last marked alive (Unix seconds, its instance's clock);
/// `None` if it carries no mark (not this crate's) or the tags could not be read.
pub(crate) async fn mark_of(client: &Client, config: &SqsBusConfig, url: &str) -> Option<u64> {
    let request = client.list_queue_tags().queue_url(url);
    let tags = bounded(config.operation_timeout, "list_queue_tags", async {
        request
            .send()
            .await
            .map_err(failed("list_queue_tags", None))
    })
    .await
    .ok()?;
    tags.tags()?.get(HEARTBEAT_TAG)?.parse().ok()
}

/// Deletes the queue at `url`; whether it did.
pub(crate) async fn delete_queue(client: &Client, config: &SqsBusConfig, url: &str) -> bool {
    let request = client.delete_queue().queue_url(url);
    bounded(config.operation_timeout, "delete_queue", async {
        request.send().await.map_err(failed("delete_queue", None))
    })
    .await
    .is_ok()
}

/// A message body: the channel and the frame, each base64 (SQS bodies must be XML text).
pub(crate) fn encode(channel: &str, frame: &[u8]) -> std::result::Result<String, Error> {
    let body = format!("{}.{}", STANDARD.encode(channel), STANDARD.encode(frame));
    if body.len() > MAX_BODY {
        return Err(Error::InvalidRequest {
            field: "data",
            reason: format!(
                "the event takes {} bytes as an SQS message; SQS carries at most {MAX_BODY} \
                 (events up to about 760 KiB fit)",
                body.len()
            ),
        });
    }
    Ok(body)
}

/// The channel and frame of a message body; `None` for a body this crate did not write.
pub(crate) fn decode(body: &str) -> Option<(String, Vec<u8>)> {
    let (channel, frame) = body.split_once('.')?;
    let channel = String::from_utf8(STANDARD.decode(channel).ok()?).ok()?;
    Some((channel, STANDARD.decode(frame).ok()?))
}

/// FNV-1a of `text`, as 16 hex digits: a message group id (its channel's) within SQS's limits.
pub(crate) fn group_of(channel: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in channel.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The deduplication id of a frame sent for `channel`: its header line (version, epoch,
/// offset, origin: unique per event) and the channel's group.
pub(crate) fn dedup_of(channel: &str, frame: &[u8]) -> String {
    let header = frame.split(|&b| b == b'\n').next().unwrap_or_default();
    let header: String = String::from_utf8_lossy(header)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(100)
        .collect();
    format!("{header}-{}", group_of(channel))
}

/// A failure at start-up, of the kind it was (a refusal such as missing permissions is not
/// retryable), with a hint on how to start a local endpoint when it was not reached.
pub(crate) fn connect_failed(config: &SqsBusConfig, error: BackendError) -> Error {
    let endpoint = config.endpoint_url.as_deref().unwrap_or("AWS");
    let hint = match error.kind() {
        BackendErrorKind::Connection | BackendErrorKind::Timeout => {
            "; is an SQS endpoint running? (`cargo xtask services` starts moto on 127.0.0.1:4566)"
        }
        _ => "",
    };
    BackendError::new(
        "sqs",
        error.kind(),
        format!("cannot set up this instance's queue at {endpoint}: {error}{hint}"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_round_trips_and_a_foreign_one_is_refused() {
        let body = encode("orders", b"v1 1 2 3\n{}\n\x00binary").unwrap();
        assert_eq!(
            decode(&body),
            Some(("orders".to_owned(), b"v1 1 2 3\n{}\n\x00binary".to_vec()))
        );
        assert_eq!(decode("hello"), None);
        let too_big = encode("c", &vec![b'x'; 800 * 1024]).unwrap_err();
        assert!(
            too_big.to_string().contains("SQS carries at most"),
            "{too_big}"
        );
    }

    #[test]
    fn only_this_deployments_queues_are_listed() {
        let config = SqsBusConfig::default();
        let ours = format!("http://h/1/{}", queue_name(&config, 0xab));
        assert!(is_ours(&config, &ours), "{ours}");
        assert!(!is_ours(
            &config,
            "http://h/1/realtime-staging-00000000000000ab.fifo"
        ));
        assert!(!is_ours(&config, "http://h/1/realtime-00000000000000ab"));
    }

    #[test]
    fn a_message_near_its_expiry_puts_the_backlog_at_risk() {
        let sent = 1_000_000_000;
        assert!(!at_risk(sent, sent));
        assert!(!at_risk(sent, sent + AT_RISK_AGE_MS - 1));
        assert!(at_risk(sent, sent + AT_RISK_AGE_MS));
        // Clocks differ: a message stamped in this instance's future is not old.
        assert!(!at_risk(sent + 5_000, sent));
    }

    #[test]
    fn groups_and_dedup_ids_stay_within_sqs_limits() {
        let group = group_of(&"x".repeat(1000));
        assert_eq!(group.len(), 16);
        let dedup = dedup_of("c", b"v1 00ab 17 ff\n{}\ndata");
        assert!(dedup.starts_with("v1-00ab-17-ff-"), "{dedup}");
        assert!(dedup.len() <= 128);
        assert_ne!(dedup_of("c", b"v1 1 1 1\n"), dedup_of("c", b"v1 1 2 1\n"));
    }
}
