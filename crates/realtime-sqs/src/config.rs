//! The bus's configuration: endpoint, credentials, queue naming, polling and liveness.

use std::fmt;
use std::time::Duration;

use aws_sdk_sqs::config::SharedCredentialsProvider;
use realtime_core::{Error, Result};

/// How the bus signs its requests.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum SqsCredentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN` (if set), read
    /// once, at connect. The default. Temporary credentials (with a session token) expire
    /// and are not read again: use [`SqsCredentials::Provider`] for those.
    #[default]
    Environment,
    /// Fixed keys; the secret and token are never printed.
    Static {
        /// The access key id.
        access_key_id: String,
        /// The secret access key.
        secret_access_key: String,
        /// A session token, for temporary credentials.
        session_token: Option<String>,
    },
    /// Any credentials provider, asked again whenever its credentials expire: for instance
    /// and task roles, SSO or web identity, pass the standard chain of the `aws-config` crate
    /// (`aws_config::load_defaults(..).await.credentials_provider()`); this crate does not
    /// depend on it, so services that sign with keys do not build it.
    Provider(SharedCredentialsProvider),
}

impl fmt::Debug for SqsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqsCredentials::Environment => f.write_str("Environment"),
            // A provider's own Debug may print what it holds.
            SqsCredentials::Provider(_) => f.write_str("Provider(..)"),
            SqsCredentials::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"<hidden>")
                .field("session_token", &"<hidden>")
                .finish(),
        }
    }
}

/// How [`SqsBus`](crate::SqsBus) reaches SQS.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqsBusConfig {
    /// The AWS region. Default `us-east-1`.
    pub region: String,
    /// Another endpoint than AWS's (a local SQS such as moto: `http://127.0.0.1:4566`).
    /// Default none.
    pub endpoint_url: Option<String>,
    /// Default [`SqsCredentials::Environment`].
    pub credentials: SqsCredentials,
    /// The names of this deployment's queues start with it; every instance of a deployment
    /// uses the same one. 1 to 40 of `[A-Za-z0-9_-]`. Default `realtime-`.
    pub queue_prefix: String,
    /// How long one receive waits for messages (long polling): 1 to 20 s, whole seconds (a
    /// fraction is cut off). Default 20 s.
    pub wait_time: Duration,
    /// Messages received (and deleted) per call, 1 to 10. Default 10.
    pub batch_size: i32,
    /// How often every instance lists the deployment's queues to learn who to send to. A
    /// publisher refuses (retryable) to send with a list older than twice this, and a new
    /// instance's `connect` waits that long (and a little more), so every publisher knows a
    /// queue before its instance subscribes anything. Default 2 s.
    pub discovery_interval: Duration,
    /// How often an instance marks its queue alive (a tag), at least 1 s. Default 30 s.
    pub heartbeat_interval: Duration,
    /// A queue not marked alive for this long belongs to an instance that died: any instance
    /// deletes it, once it has also seen the mark unchanged for three heartbeat intervals
    /// by its own clock (so clocks that differ cannot reap a live queue). At least
    /// 3 × `heartbeat_interval` and 60 s. Default 10 min.
    pub reap_after: Duration,
    /// Bound on every request but a receive (whose bound is `wait_time` plus this). Default 5 s.
    pub operation_timeout: Duration,
    /// Messages queued per local subscription before it counts as interrupted. Default 1,024.
    pub subscription_capacity: usize,
}

impl Default for SqsBusConfig {
    fn default() -> Self {
        SqsBusConfig {
            region: "us-east-1".into(),
            endpoint_url: None,
            credentials: SqsCredentials::Environment,
            queue_prefix: "realtime-".into(),
            wait_time: Duration::from_secs(20),
            batch_size: 10,
            discovery_interval: Duration::from_secs(2),
            heartbeat_interval: Duration::from_secs(30),
            reap_after: Duration::from_secs(600),
            operation_timeout: Duration::from_secs(5),
            subscription_capacity: 1024,
        }
    }
}

impl SqsBusConfig {
    /// How old a publisher's list of queues may be: two discovery rounds.
    pub(crate) fn list_max_age(&self) -> Duration {
        self.discovery_interval * 2
    }

    /// A configuration for a local SQS at `endpoint_url` (fixed test credentials), the rest
    /// default.
    pub fn local(endpoint_url: impl Into<String>) -> Self {
        SqsBusConfig {
            endpoint_url: Some(endpoint_url.into()),
            credentials: SqsCredentials::Static {
                access_key_id: "test".into(),
                secret_access_key: "test".into(),
                session_token: None,
            },
            ..SqsBusConfig::default()
        }
    }

    /// Checks every field; the error names the first that is wrong.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if self.region.is_empty() {
            return invalid("region", "must not be empty");
        }
        let prefix_ok = (1..=40).contains(&self.queue_prefix.len())
            && self
                .queue_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            return invalid("queue_prefix", "1 to 40 of [A-Za-z0-9_-]");
        }
        // Whole seconds: under 1 s would poll without waiting, a busy and billed loop.
        if self.wait_time < Duration::from_secs(1) || self.wait_time > Duration::from_secs(20) {
            return invalid("wait_time", "1 s to 20 s");
        }
        if !(1..=10).contains(&self.batch_size) {
            return invalid("batch_size", "1 to 10");
        }
        if self.heartbeat_interval < Duration::from_secs(1) {
            return invalid("heartbeat_interval", "must be at least 1 s");
        }
        for (field, value) in [
            ("discovery_interval", self.discovery_interval),
            ("operation_timeout", self.operation_timeout),
        ] {
            if value < Duration::from_millis(10) {
                return invalid(field, "must be at least 10 ms");
            }
        }
        if self.reap_after < (self.heartbeat_interval * 3).max(Duration::from_secs(60)) {
            return invalid(
                "reap_after",
                "must be at least 3 × heartbeat_interval and 60 s",
            );
        }
        if self.subscription_capacity == 0 {
            return invalid("subscription_capacity", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        SqsBusConfig::default().validate().unwrap();
        let config = SqsBusConfig {
            queue_prefix: "a.b".into(),
            ..SqsBusConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "queue_prefix",
                ..
            })
        ));
        let config = SqsBusConfig {
            batch_size: 11,
            ..SqsBusConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "batch_size",
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = SqsBusConfig {
            credentials: SqsCredentials::Static {
                access_key_id: "AKIA1".into(),
                secret_access_key: "s3cret".into(),
                session_token: Some("t0ken".into()),
            },
            ..SqsBusConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(printed.contains("AKIA1"), "{printed}");
        assert!(
            !printed.contains("s3cret") && !printed.contains("t0ken"),
            "{printed}"
        );
    }
}
