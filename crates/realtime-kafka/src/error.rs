//! Kafka failures: a private [`KafkaFailure`] that names the broker operation and the channel
//! it failed on, mapped into the public [`BackendError`] (its kind says whether to retry).

use std::fmt;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use realtime_core::{BackendError, BackendErrorKind};

use crate::hooks::BrokerError;

/// What failed, on which channel, and the client's error.
#[derive(Debug)]
pub(crate) struct KafkaFailure {
    /// The broker operation (`publish`, `subscribe`, `metadata`, `create_topic`…).
    pub(crate) operation: &'static str,
    /// The channel concerned, when the operation has one.
    pub(crate) channel: Option<String>,
    pub(crate) source: KafkaError,
}

impl fmt::Display for KafkaFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.channel {
            Some(channel) => write!(
                f,
                "kafka {} on channel {channel:?} failed: {}",
                self.operation, self.source
            ),
            None => write!(f, "kafka {} failed: {}", self.operation, self.source),
        }
    }
}

/// Whether `code` says the brokers could not be reached or did not answer in time.
fn unreachable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::AllBrokersDown
            | C::BrokerTransportFailure
            | C::Resolve
            | C::MessageTimedOut
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::QueueFull
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::UnknownTopicOrPartition
            | C::NetworkException
            | C::BrokerNotAvailable
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::NotCoordinator
            | C::CoordinatorNotAvailable
    )
}

impl From<KafkaFailure> for BackendError {
    /// Unreachable brokers, timeouts and leader changes are retryable; anything else is the
    /// broker refusing. A setting librdkafka refused is named without its value (it may be
    /// a password or a private key).
    fn from(failure: KafkaFailure) -> Self {
        if let KafkaError::ClientConfig(_, _, key, _) = &failure.source {
            return BackendError::new(
                "kafka",
                BackendErrorKind::Config,
                format!(
                    "kafka {} failed: librdkafka refused the setting {key:?}",
                    failure.operation
                ),
            );
        }
        let kind = match failure.source.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut,
            ) => BackendErrorKind::Timeout,
            Some(code) if unreachable(code) => BackendErrorKind::Connection,
            _ => BackendErrorKind::Protocol,
        };
        let message = failure.to_string();
        BackendError::new("kafka", kind, message).with_source(failure.source)
    }
}

/// Maps a client error of `operation` on `channel` (if any) into a [`BackendError`].
pub(crate) fn failed<'a>(
    operation: &'static str,
    channel: Option<&'a str>,
) -> impl FnOnce(KafkaError) -> BackendError + 'a {
    move |source| {
        KafkaFailure {
            operation,
            channel: channel.map(|c| c.chars().take(128).collect()),
            source,
        }
        .into()
    }
}

/// `operation` did not finish within `timeout`: retryable.
pub(crate) fn timed_out(operation: &'static str, channel: Option<&str>) -> BackendError {
    let channel: Option<String> = channel.map(|c| c.chars().take(128).collect());
    let message = match channel {
        Some(channel) => format!("kafka {operation} on channel {channel:?} timed out"),
        None => format!("kafka {operation} timed out"),
    };
    BackendError::new("kafka", BackendErrorKind::Timeout, message)
}

/// The brokers could not be reached at start-up, with what librdkafka last reported (a
/// certificate it could not verify, credentials the brokers refused) or, when it reported
/// nothing, a hint on how to start a local broker. A refused authentication is not
/// retryable; the rest is.
pub(crate) fn connect_failed(
    brokers: &str,
    source: KafkaError,
    last: Option<BrokerError>,
) -> BackendError {
    const HINT: &str =
        "is a broker running? (`cargo xtask services` starts tansu on 127.0.0.1:9092)";
    let message = match &last {
        // A TLS or SASL failure: the broker is there, the reason says what to fix.
        Some(last) if last.reason.contains("SSL") || last.is_authentication() => {
            format!("cannot reach the Kafka brokers {brokers}: {}", last.reason)
        }
        Some(last) => format!(
            "cannot reach the Kafka brokers {brokers}: {}; {HINT}",
            last.reason
        ),
        None => format!("cannot reach the Kafka brokers {brokers}; {HINT}"),
    };
    let kind = match &last {
        Some(last) if last.is_authentication() => BackendErrorKind::Config,
        _ => BackendErrorKind::Connection,
    };
    BackendError::new("kafka", kind, message).with_source(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_brokers_are_retryable_a_refusal_is_not() {
        let down = BackendError::from(KafkaFailure {
            operation: "publish",
            channel: Some("c".into()),
            source: KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown),
        });
        assert!(down.is_retryable(), "{down}");
        assert!(
            down.to_string().contains("publish on channel \"c\""),
            "{down}"
        );
        let late = BackendError::from(KafkaFailure {
            operation: "publish",
            channel: None,
            source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
        });
        assert_eq!(late.kind(), BackendErrorKind::Timeout);
        let refused = BackendError::from(KafkaFailure {
            operation: "publish",
            channel: None,
            source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
        });
        assert!(!refused.is_retryable());
        let setting = BackendError::from(KafkaFailure {
            operation: "connect",
            channel: None,
            source: KafkaError::ClientConfig(
                rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                "Invalid value \"s3cret-key\" for ssl.key.pem".into(),
                "ssl.key.pem".into(),
                "s3cret-key".into(),
            ),
        });
        let shown = format!("{setting} {setting:?}");
        assert!(
            shown.contains("ssl.key.pem") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
