//! The bus's configuration: brokers, topic, timeouts, TLS and SASL.

use std::time::Duration;

use realtime_core::{Error, Result};

#[cfg(test)]
use crate::oauth::{OAuthToken, OAuthTokenProvider};
#[cfg(test)]
use crate::security::Pem;
use crate::security::{KafkaTls, Sasl};

/// The default brokers: a local Kafka (or a Kafka-protocol broker such as tansu).
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// How [`KafkaBus`](crate::KafkaBus) reaches Kafka.
///
/// `security.protocol` follows from [`tls`](Self::tls) and [`sasl`](Self::sasl):
/// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
///
/// ```
/// use realtime_kafka::{KafkaBusConfig, KafkaTls, Pem, Sasl};
///
/// // A managed cluster (Amazon MSK with SCRAM, Confluent Cloud, Aiven…): TLS with the
/// // system's roots, SCRAM credentials, topics created with the broker's replication.
/// let mut config = KafkaBusConfig::new("b-1.example.kafka.us-east-1.amazonaws.com:9096");
/// config.tls = Some(KafkaTls::default());
/// config.sasl = Some(Sasl::scram_sha_512("app", "secret"));
/// config.validate()?;
///
/// // A private CA and a client certificate (mutual TLS), from files (which `validate`
/// // checks exist).
/// let mut tls = KafkaTls::with_ca(Pem::File("/etc/kafka/ca.pem".into()));
/// tls.client_certificate = Some(Pem::File("/etc/kafka/client.pem".into()));
/// tls.client_key = Some(Pem::File("/etc/kafka/client.key".into()));
/// config.tls = Some(tls);
/// config.sasl = None;
/// assert_eq!(config.security_protocol(), "SSL");
/// # Ok::<(), realtime_core::Error>(())
/// ```
#[derive(Debug, Clone)]
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
    /// Replicas of the topic when this bus creates it. Default `None`: the broker's
    /// `default.replication.factor` (3 on the managed services; a bus never silently creates
    /// an unreplicated topic on a cluster of several brokers).
    pub replication: Option<i32>,
    /// Whether a missing topic is created (at connect, and again when a broker comes back
    /// without it); with `false` a missing topic is an error. Default `true`. Must be
    /// `false` with [`Sasl::OAuthBearer`] (create the topic beforehand): rdkafka's admin
    /// client cannot ask for a token.
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
    /// TLS to the brokers. Default `None` (plaintext).
    pub tls: Option<KafkaTls>,
    /// SASL authentication. Default `None`.
    pub sasl: Option<Sasl>,
}

impl Default for KafkaBusConfig {
    fn default() -> Self {
        KafkaBusConfig {
            brokers: DEFAULT_BROKERS.into(),
            topic: "realtime-events".into(),
            partitions: 12,
            replication: None,
            create_topic: true,
            send_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
            fetch_wait: Duration::from_millis(100),
            subscription_capacity: 1024,
            tls: None,
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

    /// The `security.protocol` these settings give.
    pub fn security_protocol(&self) -> &'static str {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "PLAINTEXT",
            (true, false) => "SSL",
            (false, true) => "SASL_PLAINTEXT",
            (true, true) => "SASL_SSL",
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
        if self.replication.is_some_and(|r| r < 1) {
            return invalid(
                "replication",
                "must be at least 1 (or None: the broker's default)",
            );
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
        if self.subscription_capacity == 0 {
            return invalid("subscription_capacity", "must be at least 1");
        }
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        if let Some(sasl) = &self.sasl {
            sasl.validate()?;
            if matches!(sasl, Sasl::OAuthBearer(_)) && self.create_topic {
                return invalid(
                    "create_topic",
                    "must be false with SASL OAUTHBEARER: rdkafka's admin client cannot ask \
                     the token provider for a token; create the topic beforehand",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &KafkaBusConfig) -> &'static str {
        match config.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        KafkaBusConfig::default().validate().unwrap();
        let config = KafkaBusConfig {
            topic: "a topic".into(),
            ..KafkaBusConfig::default()
        };
        assert_eq!(field_of(&config), "topic");
        let mut config = KafkaBusConfig::new("b:9092");
        config.fetch_wait = Duration::from_secs(301);
        assert_eq!(field_of(&config), "fetch_wait");
        let mut config = KafkaBusConfig::new("");
        config.partitions = 0;
        assert_eq!(field_of(&config), "brokers");
        let mut config = KafkaBusConfig::new("b:9092");
        config.replication = Some(0);
        assert_eq!(field_of(&config), "replication");
    }

    #[test]
    fn the_security_protocol_follows_tls_and_sasl() {
        let mut config = KafkaBusConfig::default();
        assert_eq!(config.security_protocol(), "PLAINTEXT");
        config.sasl = Some(Sasl::plain("u", "p"));
        assert_eq!(config.security_protocol(), "SASL_PLAINTEXT");
        config.tls = Some(KafkaTls::default());
        assert_eq!(config.security_protocol(), "SASL_SSL");
        config.sasl = None;
        assert_eq!(config.security_protocol(), "SSL");
        config.validate().unwrap();
    }

    #[test]
    fn oauthbearer_needs_the_topic_created_beforehand() {
        struct Never;
        impl OAuthTokenProvider for Never {
            fn token(&self) -> std::result::Result<OAuthToken, crate::oauth::TokenError> {
                Err("no token".into())
            }
        }
        let mut config = KafkaBusConfig {
            tls: Some(KafkaTls::default()),
            sasl: Some(Sasl::oauth_bearer(Never)),
            ..KafkaBusConfig::default()
        };
        assert_eq!(field_of(&config), "create_topic");
        config.create_topic = false;
        config.validate().unwrap();
    }

    #[test]
    fn debug_hides_every_secret() {
        let tls = KafkaTls {
            client_certificate: Some(Pem::Text("-----BEGIN CERTIFICATE-----cert".into())),
            client_key: Some(Pem::Text("-----BEGIN PRIVATE KEY-----k3y".into())),
            ..KafkaTls::default()
        };
        let config = KafkaBusConfig {
            sasl: Some(Sasl::scram_sha_256("user", "s3cret")),
            tls: Some(tls),
            ..KafkaBusConfig::default()
        };
        config.validate().unwrap();
        let printed = format!("{config:?}");
        assert!(
            printed.contains("user") && !printed.contains("s3cret") && !printed.contains("k3y"),
            "{printed}"
        );
    }
}
