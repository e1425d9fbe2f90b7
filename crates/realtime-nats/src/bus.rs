//! The NATS bus: one subject per channel, a subscription per channel with local
//! subscribers, reconnects reported as interruptions.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_nats::{Client, ConnectOptions, PublishErrorKind};
use async_trait::async_trait;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use realtime_core::driver::{BusDriver, DriverBus, Inbox, OnDriver, redact_url};
use realtime_core::{BackendError, BackendErrorKind, Bus, Error, Reach, Result};
use tokio::task::JoinHandle;

use crate::barrier::Barrier;
use crate::config::NatsBusConfig;
use crate::error::{disconnected, failed, timed_out};
use crate::link::{self, Link};
use crate::refusals::{self, Verdict};
use crate::subject;

/// Cross-instance fan-out over NATS (core NATS, no JetStream).
///
/// Each channel is one subject, `<subject_prefix><channel encoded as one token>` (see the
/// crate docs for the encoding); an instance subscribes to a channel's subject while it has
/// local subscribers. NATS routes a message to every connection subscribed when the server
/// receives it, in the order one connection published.
///
/// What `publish` returning `Ok` promises: the server received the event (the publish is
/// followed by a round trip through the server — a marker the bus sends itself — within
/// [`operation_timeout`](NatsBusConfig::operation_timeout)), so every instance whose
/// subscription the server knew then gets it unless its own connection drops. Core NATS
/// keeps nothing: an instance disconnected at that moment misses it, and is told — after a
/// reconnect every subscription receives `Interrupted` (it repairs from the store, or
/// reports a gap). While the connection is down, publishes and subscribes fail at once
/// with a retryable error instead of queueing in the client.
///
/// A subscribe returns once the server has the subscription (the same round trip), so an
/// event published after it returns is delivered. On a NATS cluster this holds for the
/// server the instance is connected to: interest reaches the cluster's other servers
/// shortly after, asynchronously, and an event published through another server in that
/// window can miss the new subscription.
///
/// Permissions: the bus publishes and subscribes to its channels' subjects and to
/// `_REALTIME_SYNC.>` (its round-trip markers); `connect` fails if the latter is refused. A
/// refused channel subscription is reported to its subscribers as `Interrupted`; a refused
/// publish (the server says so only afterwards) is logged as an error and counted in
/// `realtime_nats_permission_violations_total`.
pub struct NatsBus {
    bus: DriverBus<NatsDriver>,
}

struct NatsDriver {
    client: Client,
    barrier: Arc<Barrier>,
    link: Arc<Link>,
    config: NatsBusConfig,
    /// Each subscribed channel's forwarding task (it owns the NATS subscription: aborting
    /// it unsubscribes).
    subscriptions: Mutex<HashMap<String, JoinHandle<()>>>,
    events: JoinHandle<()>,
    closed: AtomicBool,
}

/// Background tasks end with the driver.
impl Drop for NatsDriver {
    fn drop(&mut self) {
        self.events.abort();
        for task in self.subscriptions.get_mut().values() {
            task.abort();
        }
    }
}

impl NatsBus {
    /// Connects to the server of `config` (validated first). An unreachable server is a
    /// retryable error saying so, within [`connect_timeout`](NatsBusConfig::connect_timeout).
    pub async fn connect(config: NatsBusConfig) -> Result<Self> {
        config.validate()?;
        let inbox = Inbox::new("nats", config.subscription_capacity);
        let link = Arc::new(Link {
            inbox: inbox.clone(),
            down: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            operation_timeout: config.operation_timeout,
            refusals: Default::default(),
        });
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let refused = link.clone();
        let max_delay = config.reconnect_delay_max;
        let mut options = ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            // Messages the client buffers per subscription (its default is 65,536, up to
            // max_payload each); one dropped is a slow-consumer event → Interrupted.
            .subscription_capacity(config.subscription_capacity.max(64))
            .reconnect_delay_callback(move |attempts| {
                let exponent = u32::try_from(attempts.min(16)).unwrap_or(16);
                (std::time::Duration::from_millis(50) * 2u32.pow(exponent)).min(max_delay)
            })
            .event_callback(move |event| {
                if let async_nats::Event::ServerError(error) = &event {
                    refused.refusals.record(&error.to_string());
                }
                let _ = events_tx.send(event);
                async {}
            });
        options = crate::auth::apply(&config, options).await?;
        // async-nats ignores a URL's user part for authentication but logs the URL (with its
        // password) at debug: the credentials were taken from it above, so it goes without.
        let servers = crate::auth::without_credentials(&config.url);
        let connecting = async_nats::connect_with_options(servers.as_str(), options);
        let client = match tokio::time::timeout(config.connect_timeout * 2, connecting).await {
            Ok(Ok(client)) => client,
            Ok(Err(error))
                if matches!(
                    error.kind(),
                    async_nats::ConnectErrorKind::AuthorizationViolation
                        | async_nats::ConnectErrorKind::Authentication
                ) =>
            {
                // Retrying with the same credentials will not help.
                return Err(BackendError::new(
                    "nats",
                    BackendErrorKind::Config,
                    format!(
                        "NATS at {} refused the credentials: {error}",
                        redact_url(&config.url)
                    ),
                )
                .into());
            }
            outcome => {
                let detail = match outcome {
                    Ok(Err(error)) => error_chain(&error),
                    _ => "timed out".to_owned(),
                };
                return Err(BackendError::new(
                    "nats",
                    BackendErrorKind::Connection,
                    format!(
                        "cannot connect to NATS at {}: {detail}; is nats-server running? \
                         (`nats-server -a 127.0.0.1 -p 4222`)",
                        redact_url(&config.url)
                    ),
                )
                .into());
            }
        };
        let barrier = match Barrier::start(&client, realtime_core::frame::Origin::fresh().0).await {
            Ok(barrier) => Arc::new(barrier),
            Err(error) => {
                return Err(failed(
                    "subscribe",
                    None,
                    BackendErrorKind::Connection,
                    error,
                ));
            }
        };
        // One round trip now: a server that refuses the bus its marker subject would
        // otherwise time out every publish.
        if !barrier.round_trip(&client, config.operation_timeout).await {
            return Err(failed(
                "connect",
                None,
                BackendErrorKind::Protocol,
                format!(
                    "no round trip through the server within {:?}: the bus needs permission \
                     to publish and subscribe to {}>",
                    config.operation_timeout,
                    crate::barrier::SUBJECT_PREFIX
                ),
            ));
        }
        let events = tokio::spawn(link::watch(
            link.clone(),
            client.clone(),
            barrier.clone(),
            config.subject_prefix.clone(),
            events_rx,
        ));
        metrics::gauge!(realtime_core::metrics::BUS_CONNECTED, "backend" => "nats").set(1.0);
        Ok(NatsBus {
            bus: DriverBus::new(
                NatsDriver {
                    client,
                    barrier,
                    link,
                    config,
                    subscriptions: Mutex::new(HashMap::new()),
                    events,
                    closed: AtomicBool::new(false),
                },
                inbox,
            ),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NatsBusConfig {
        &self.bus.driver().config
    }

    /// Whether the connection is up (and any outage before it was reported).
    pub fn is_connected(&self) -> bool {
        !self.bus.driver().link.is_down()
    }

    /// How many times the bus came back after losing its connection.
    pub fn reconnects(&self) -> u64 {
        self.bus.driver().link.reconnects.load(Ordering::Relaxed)
    }

    /// The subject `channel`'s events travel on.
    pub fn subject_of(&self, channel: &str) -> Result<String> {
        subject::encode(&self.config().subject_prefix, channel)
    }

    /// The channel whose events travel on `subject`; `None` for a subject this bus does
    /// not use.
    pub fn channel_of(&self, subject: &str) -> Option<String> {
        subject::decode(&self.config().subject_prefix, subject)
    }
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("config", self.config())
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

impl NatsDriver {
    /// A round trip: the server has processed everything sent before it.
    async fn round_trip(&self, operation: &'static str, channel: Option<&str>) -> Result<()> {
        let bound = self.config.operation_timeout;
        if self.barrier.round_trip(&self.client, bound).await {
            Ok(())
        } else {
            Err(timed_out(operation, channel))
        }
    }
}

#[async_trait]
impl BusDriver for NatsDriver {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        // A `Subject` (shared bytes): kept for the refusal check after it is sent.
        let subject =
            async_nats::Subject::from(subject::encode(&self.config.subject_prefix, channel)?);
        if self.link.is_down() {
            return Err(disconnected("publish", Some(channel)));
        }
        // A subject the server refused lately is refused again at once: permissions are
        // configuration, and the server says so only after the fact.
        if self.link.refusals.lately(subject.as_str()) {
            return Err(refusals::error(Verdict::Refused, channel, subject.as_str()));
        }
        let refusals_before = self.link.refusals.count();
        let sent = tokio::time::timeout(
            self.config.operation_timeout,
            self.client.publish(subject.clone(), frame.into()),
        )
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(error)) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                return Err(Error::InvalidRequest {
                    field: "data",
                    reason: format!(
                        "the event is larger than the NATS server's max_payload ({} bytes)",
                        self.client.server_info().max_payload
                    ),
                });
            }
            Ok(Err(error)) => {
                return Err(failed(
                    "publish",
                    Some(channel),
                    BackendErrorKind::Connection,
                    error,
                ));
            }
            Err(_) => return Err(timed_out("publish", Some(channel))),
        }
        self.round_trip("publish", Some(channel)).await?;
        // The server answers a refused publish before the round trip's echo, but the client
        // hands the two over on different tasks: the first refused publish of a subject may
        // still find its refusal unrecorded and succeed; every later one fails (`lately`).
        // Yielding here to give the event task a turn narrowed that race and cost every
        // sequential publish a scheduler round, 15 % of its rate (`cargo bench -p
        // realtime-nats`, one publisher: 12.7 k/s with it, 15 k/s without).
        match self.link.refusals.since(refusals_before, subject.as_str()) {
            Verdict::Sent => Ok(()),
            verdict => Err(refusals::error(verdict, channel, subject.as_str())),
        }
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let subject = subject::encode(&self.config.subject_prefix, channel)?;
        if self.link.is_down() {
            return Err(disconnected("subscribe", Some(channel)));
        }
        let subscribing = tokio::time::timeout(
            self.config.operation_timeout,
            self.client.subscribe(subject),
        );
        let mut subscriber = match subscribing.await {
            Ok(Ok(subscriber)) => subscriber,
            Ok(Err(error)) => {
                return Err(failed(
                    "subscribe",
                    Some(channel),
                    BackendErrorKind::Connection,
                    error,
                ));
            }
            Err(_) => return Err(timed_out("subscribe", Some(channel))),
        };
        // Dropped on failure: the client unsubscribes.
        self.round_trip("subscribe", Some(channel)).await?;
        let inbox = self.link.inbox.clone();
        let name = channel.to_owned();
        let task = tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                inbox.frame(&name, &message.payload);
            }
        });
        if let Some(old) = self.subscriptions.lock().insert(channel.to_owned(), task) {
            old.abort();
        }
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        if let Some(task) = self.subscriptions.lock().remove(channel) {
            task.abort();
        }
        Ok(())
    }

    fn reach(&self) -> Reach {
        Reach::Network
    }

    async fn check(&self) -> Result<()> {
        if self.link.is_down() {
            return Err(disconnected("check", None));
        }
        self.round_trip("check", None).await
    }

    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        for (_, task) in self.subscriptions.lock().drain() {
            task.abort();
        }
        // Sends what is buffered, then closes the connection; bounded.
        let _ = tokio::time::timeout(self.config.operation_timeout, async {
            let _ = self.client.drain().await;
            let _ = self.client.flush().await;
        })
        .await;
        self.events.abort();
        Ok(())
    }
}

impl OnDriver for NatsBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}

/// `error` and its causes (a certificate's reason sits in a source), capped at 1 KiB.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text.chars().take(1024).collect()
}
