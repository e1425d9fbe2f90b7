//! The bus's configuration: brokers, topic, timeouts, credentials.

use std::fmt;
use std::time::Duration;

use realtime_core::{Error, Result};

/// The default brokers: a local Kafka (or a Kafka-protocol broker such as tansu).
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// SASL credentials (`security.protocol` `SASL_PLAINTEXT`).
///
/// This build of librdkafka has neither OpenSSL nor Cyrus SASL (rdkafka's `ssl` and
/// `gssapi` features are off): only `PLAIN` without TLS works, and
/// [`KafkaBusConfig::validate`] refuses the rest rather than failing at connect. For a broker
/// that requires TLS (`SASL_SSL`, most managed Kafka services), put a TLS-terminating proxy on
/// the same host until TLS is built in.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sasl {
    /// `PLAIN` (the only mechanism this build supports).
    pub mechanism: String,
    /// The user name.
    pub username: String,
    /// The password; never printed.
    pub password: String,
    /// Whether the connection is TLS (`SASL_SSL`): refused by this build. Default `false`.
    pub tls: bool,
}

impl Sasl {
    /// Credentials for `mechanism` (`PLAIN`), without TLS: the password crosses the network
    /// in clear, which [`KafkaBus::connect`](crate::KafkaBus::connect) logs as a warning.
    pub fn new(
        mechanism: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Sasl {
            mechanism: mechanism.into(),
            username: username.into(),
            password: password.into(),
            tls: false,
        }
    }
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .field("tls", &self.tls)
            .finish()
    }
}

/// How [`KafkaBus`](crate::KafkaBus) reaches Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaBusConfig {
    /// `HOST:PORT[,HOST:PORT…]`. Default [`DEFAULT_BROKERS`].
    pub brokers: String,
    /// The one topic every instance publishes to and reads. Default `realtime-events`.
    pub topic: String,
    /// Partitions of the topic when this bus creates it; a channel's events all go to one
    /// partition, chosen from the channel's name. An existing topic keeps its own count
    /// (every instance reads it from the broker). Default 12.
    pub partitions: i32,
    /// Replicas of the topic when this bus creates it. Default 1.
    pub replication: i32,
    /// Whether a missing topic is created (at connect, and again when a broker comes back
    /// without it); with `false` a missing topic is an error. Default `true`.
    pub create_topic: bool,
    /// How long a publish may wait for the brokers to acknowledge it (`acks=all`) before it
    /// fails with a retryable error. Default 5 s.
    pub send_timeout: Duration,
    /// Bound on every other broker operation (metadata, offsets, topic creation). Default 5 s.
    pub operation_timeout: Duration,
    /// How often the bus checks a broker that went away. Default 1 s.
    pub health_interval: Duration,
    /// The longest a broker may hold the consumer's fetch when nothing new is there
    /// (`fetch.wait.max.ms`). Kafka answers as soon as an event arrives, so this only bounds
    /// idle round trips; a broker that waits it out before answering (tansu does) adds up to
    /// this much latency to every delivery. Default 100 ms.
    pub fetch_wait: Duration,
    /// Messages queued per local subscription before it counts as interrupted. Default 1,024.
    pub subscription_capacity: usize,
    /// SASL credentials. Default none (plaintext).
    pub sasl: Option<Sasl>,
}

impl Default for KafkaBusConfig {
    fn default() -> Self {
        KafkaBusConfig {
            brokers: DEFAULT_BROKERS.into(),
            topic: "realtime-events".into(),
            partitions: 12,
            replication: 1,
            create_topic: true,
            send_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
            fetch_wait: Duration::from_millis(100),
            subscription_capacity: 1024,
            sasl: None,
        }
    }
}

impl KafkaBusConfig {
    /// A configuration for `brokers`, the rest default.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaBusConfig {
            brokers: brokers.into(),
            ..KafkaBusConfig::default()
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
        if self.brokers.trim().is_empty() {
            return invalid("brokers", "must name at least one HOST:PORT");
        }
        let topic_ok = !self.topic.is_empty()
            && self.topic.len() <= 249
            && self.topic != "."
            && self.topic != ".."
            && self
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !topic_ok {
            return invalid("topic", "1 to 249 of [a-zA-Z0-9._-], not `.` or `..`");
        }
        if self.partitions < 1 {
            return invalid("partitions", "must be at least 1");
        }
        if self.replication < 1 {
            return invalid("replication", "must be at least 1");
        }
        for (field, value) in [
            ("send_timeout", self.send_timeout),
            ("operation_timeout", self.operation_timeout),
            ("health_interval", self.health_interval),
            ("fetch_wait", self.fetch_wait),
        ] {
            if value < Duration::from_millis(10) {
                return invalid(field, "must be at least 10 ms");
            }
        }
        // librdkafka's own limits (`socket.timeout.ms`, `fetch.wait.max.ms`: 300 s).
        for (field, value) in [
            ("operation_timeout", self.operation_timeout),
            ("fetch_wait", self.fetch_wait),
            ("send_timeout", self.send_timeout),
        ] {
            if value > Duration::from_secs(300) {
                return invalid(field, "must be at most 300 s");
            }
        }
        if let Some(sasl) = &self.sasl {
            // SCRAM needs OpenSSL's crypto, GSSAPI Cyrus SASL, TLS OpenSSL: none is built in,
            // and librdkafka would only say so once connecting.
            if sasl.mechanism != "PLAIN" {
                return invalid(
                    "sasl",
                    "mechanism: only PLAIN is built in (no OpenSSL or Cyrus SASL)",
                );
            }
            if sasl.tls {
                return invalid("sasl", "tls: TLS (SASL_SSL) is not built in");
            }
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
        KafkaBusConfig::default().validate().unwrap();
        let config = KafkaBusConfig {
            topic: "a topic".into(),
            ..KafkaBusConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig { field: "topic", .. })
        ));
        let mut config = KafkaBusConfig::new("b:9092");
        config.fetch_wait = Duration::from_secs(301);
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "fetch_wait",
                ..
            })
        ));
        let mut config = KafkaBusConfig::new("");
        config.partitions = 0;
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "brokers",
                ..
            })
        ));
    }

    #[test]
    fn what_this_build_cannot_do_is_refused_at_validation() {
        for sasl in [
            Sasl::new("SCRAM-SHA-512", "user", "pw"),
            Sasl {
                tls: true,
                ..Sasl::new("PLAIN", "user", "pw")
            },
        ] {
            let config = KafkaBusConfig {
                sasl: Some(sasl),
                ..KafkaBusConfig::default()
            };
            assert!(matches!(
                config.validate(),
                Err(Error::InvalidConfig { field: "sasl", .. })
            ));
        }
        let plain = KafkaBusConfig {
            sasl: Some(Sasl::new("PLAIN", "user", "pw")),
            ..KafkaBusConfig::default()
        };
        assert!(plain.validate().is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let config = KafkaBusConfig {
            sasl: Some(Sasl::new("PLAIN", "user", "s3cret")),
            ..KafkaBusConfig::default()
        };
        let printed = format!("{config:?}");
        assert!(
            printed.contains("user") && !printed.contains("s3cret"),
            "{printed}"
        );
    }
}
