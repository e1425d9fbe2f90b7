//! # realtime-sqs
//!
//! A [`Bus`](realtime_core::Bus) on Amazon SQS for teams on AWS without Redis or Kafka:
//! every instance has a FIFO queue of its own and every event is sent to every instance's
//! queue, so fan-out reaches every instance — SQS alone hands a message to one consumer.
//! [`SqsBus`] says how, what it costs and how it scales.
//!
//! ```no_run
//! use std::sync::Arc;
//! use realtime_core::{History, Manager};
//! use realtime_sqs::{SqsBus, SqsBusConfig};
//!
//! # async fn run() -> realtime_core::Result<()> {
//! let bus = SqsBus::connect(SqsBusConfig::local("http://127.0.0.1:4566")).await?;
//! // SQS keeps no history: each instance keeps its own (or add a shared store).
//! let manager = Manager::builder()
//!     .history(History::PerInstance)
//!     .bus(Arc::new(bus))
//!     .build()?;
//! # drop(manager);
//! # Ok(()) }
//! ```
//!
//! On AWS, name the region and pass the standard credentials chain (instance or task role,
//! SSO, web identity) from the `aws-config` crate, which this crate does not depend on:
//!
//! ```ignore
//! // `aws-config` in your Cargo.toml; `SqsBusConfig` is `#[non_exhaustive]`: set fields.
//! let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let mut config = realtime_sqs::SqsBusConfig::default();
//! config.region = "eu-west-1".into();
//! config.credentials = realtime_sqs::SqsCredentials::Provider(
//!     aws.credentials_provider().expect("a credentials chain"),
//! );
//! let bus = realtime_sqs::SqsBus::connect(config).await?;
//! ```
//!
//! ## Limits
//! An event is sent as one message: its channel and frame in base64 (SQS bodies are text),
//! at most 1 MiB — an event over about 760 KiB is refused at publish with
//! [`Error::InvalidRequest`](realtime_core::Error::InvalidRequest), never truncated.
//!
//! ## Errors
//! Failures are [`realtime_core::Error::Backend`] with backend `"sqs"`, naming the operation
//! and the channel: an unreachable endpoint (`Connection`), throttling and timeouts are
//! retryable; a refusal (`Protocol`) is not.

mod bus;
mod config;
mod error;
mod liveness;
mod queues;
mod receiver;

/// The credentials provider type of [`SqsCredentials::Provider`], from `aws-sdk-sqs`.
pub use aws_sdk_sqs::config::SharedCredentialsProvider;
pub use bus::SqsBus;
pub use config::{SqsBusConfig, SqsCredentials};
