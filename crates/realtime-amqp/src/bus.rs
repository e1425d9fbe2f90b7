//! The AMQP bus: an exclusive queue per instance, bound to the exchange with the channel as
//! routing key while the channel has local subscribers; publisher confirms.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use parking_lot::RwLock;
use realtime_core::driver::{BusDriver, DriverBus, Inbox, OnDriver, redact_url};
use realtime_core::{BackendError, BackendErrorKind, Bus, Error, Reach, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::AmqpBusConfig;
use crate::error::{disconnected, failed};
use crate::link::{self, Shared};
use crate::recover;

/// AMQP routing keys are short strings: at most 255 bytes.
const MAX_ROUTING_KEY: usize = 255;

/// Cross-instance fan-out over RabbitMQ (AMQP 0-9-1).
///
/// Every instance of a deployment publishes to one direct exchange
/// ([`exchange`](AmqpBusConfig::exchange)) with the channel as routing key, and receives
/// through a queue of its own — server-named, exclusive, deleted by the broker with the
/// connection — bound to the exchange under a channel's name while the channel has local
/// subscribers (bound with the first, unbound after the last). A direct exchange matches
/// routing keys exactly, so channel names carrying `.`, `*` or `#` route to themselves only.
///
/// What `publish` returning `Ok` promises: the broker confirmed the event (publisher
/// confirms), i.e. it is in the queue of every instance bound to the channel at that moment;
/// within [`operation_timeout`](AmqpBusConfig::operation_timeout), else a retryable error. A
/// broker that refuses it (`nack`) is a retryable error too.
///
/// A lost connection (noticed by the client, by a failed operation, by the heartbeat, or
/// by a probe the bus sends itself through the exchange every
/// [`probe_interval`](AmqpBusConfig::probe_interval) that stops coming back — the exchange,
/// the queue or its bindings deleted by hand, a consumer the broker cancelled):
/// every subscription is marked interrupted, publishes and subscribes fail at once with a
/// retryable error, and the bus reconnects by itself (backing off up to
/// [`reconnect_delay_max`](AmqpBusConfig::reconnect_delay_max)), declares the exchange and a
/// new queue, binds every subscribed channel again, and only then tells each subscription
/// it was interrupted (it repairs from the store, or reports a gap).
pub struct AmqpBus {
    bus: DriverBus<AmqpDriver>,
}

struct AmqpDriver {
    shared: Arc<Shared>,
    recovery: parking_lot::Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
}

impl Drop for AmqpDriver {
    /// A bus dropped without `close`: the recovery stops, and the connection is closed in
    /// the background (when a runtime is there to run it).
    fn drop(&mut self) {
        if let Some(recovery) = self.recovery.get_mut().take() {
            recovery.abort();
        }
        if let Some(generation) = self.shared.current.write().take() {
            let bound = self.shared.config.operation_timeout;
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { generation.close(bound).await });
            }
        }
    }
}

impl AmqpBus {
    /// Connects to the broker of `config` (validated first), declares the exchange and this
    /// instance's queue. An unreachable broker is a retryable error saying so, within
    /// [`connect_timeout`](AmqpBusConfig::connect_timeout).
    pub async fn connect(config: AmqpBusConfig) -> Result<Self> {
        config.validate()?;
        let inbox = Inbox::new("amqp", config.subscription_capacity);
        let shared = Arc::new(Shared {
            config,
            inbox: inbox.clone(),
            current: RwLock::new(None),
            down: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            broken: Arc::new(Notify::new()),
        });
        let generation = link::open(&shared).await.map_err(|error| {
            let url = redact_url(&shared.config.url);
            // Refused credentials or settings stay a configuration error; the rest may be
            // a broker that is not up yet.
            let (kind, message) = match &error {
                Error::Backend(backend) if backend.kind() == BackendErrorKind::Config => (
                    BackendErrorKind::Config,
                    format!("RabbitMQ at {url} refused the connection: {error}"),
                ),
                _ => (
                    BackendErrorKind::Connection,
                    format!(
                        "cannot connect to RabbitMQ at {url}: {error}; is the broker running? \
                         (`rabbitmq-server -detached`)"
                    ),
                ),
            };
            Error::from(BackendError::new("amqp", kind, message))
        })?;
        *shared.current.write() = Some(Arc::new(generation));
        let recovery = tokio::spawn(recover::recover(shared.clone()));
        metrics::gauge!(realtime_core::metrics::BUS_CONNECTED, "backend" => "amqp").set(1.0);
        Ok(AmqpBus {
            bus: DriverBus::new(
                AmqpDriver {
                    shared,
                    recovery: parking_lot::Mutex::new(Some(recovery)),
                    closed: AtomicBool::new(false),
                },
                inbox,
            ),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AmqpBusConfig {
        &self.bus.driver().shared.config
    }

    /// Whether the connection is up (and any outage before it was reported).
    pub fn is_connected(&self) -> bool {
        !self.bus.driver().shared.down.load(Ordering::Acquire)
    }

    /// How many times the bus came back after losing its connection.
    pub fn reconnects(&self) -> u64 {
        self.bus.driver().shared.reconnects.load(Ordering::Relaxed)
    }

    /// This instance's queue (it changes with each reconnect).
    pub fn queue(&self) -> Option<String> {
        let current = self.bus.driver().shared.current.read();
        current.as_ref().map(|g| g.queue.as_str().to_owned())
    }
}

impl fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBus")
            .field("config", self.config())
            .field("connected", &self.is_connected())
            .finish_non_exhaustive()
    }
}

fn routing_key(channel: &str) -> Result<()> {
    if channel.len() > MAX_ROUTING_KEY {
        return Err(Error::InvalidChannel {
            channel: channel.chars().take(64).collect(),
            reason: "longer than an AMQP routing key (255 bytes)",
        });
    }
    Ok(())
}

#[async_trait]
impl BusDriver for AmqpDriver {
    async fn publish(&self, channel: &str, frame: Vec<u8>) -> Result<()> {
        routing_key(channel)?;
        let shared = &self.shared;
        let generation = shared
            .generation()
            .ok_or_else(|| disconnected("publish", Some(channel)))?;
        let confirmation = shared
            .bounded("publish", Some(channel), async {
                generation
                    .publish
                    .basic_publish(
                        shared.config.exchange.as_str().into(),
                        channel.into(),
                        BasicPublishOptions::default(),
                        &frame,
                        BasicProperties::default(),
                    )
                    .await?
                    .await
            })
            .await?;
        match confirmation {
            Confirmation::Ack(_) => Ok(()),
            Confirmation::Nack(_) => Err(failed(
                "publish",
                Some(channel),
                BackendErrorKind::Connection,
                "the broker refused the event (nack)",
            )),
            // The publish channel is put in confirm mode when it opens: not reached.
            Confirmation::NotRequested => Err(failed(
                "publish",
                Some(channel),
                BackendErrorKind::Protocol,
                "the broker did not confirm",
            )),
        }
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        routing_key(channel)?;
        let generation = self
            .shared
            .generation()
            .ok_or_else(|| disconnected("subscribe", Some(channel)))?;
        link::bind(&self.shared, &generation, channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        // While disconnected there is nothing to unbind: the next queue is bound afresh.
        let Some(generation) = self.shared.generation() else {
            return Ok(());
        };
        let request = generation.control.queue_unbind(
            generation.queue.clone(),
            self.shared.config.exchange.as_str().into(),
            channel.into(),
            FieldTable::default(),
        );
        self.shared.bounded("unbind", Some(channel), request).await
    }

    fn reach(&self) -> Reach {
        Reach::Network
    }

    async fn check(&self) -> Result<()> {
        let echo_within =
            self.shared.config.probe_interval * 2 + self.shared.config.operation_timeout;
        match self.shared.generation() {
            Some(generation) if generation.healthy(echo_within) => Ok(()),
            _ => Err(disconnected("check", None)),
        }
    }

    async fn close(&self, _channels: Vec<String>) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Stopped, and waited for: a reconnect in flight cannot install a generation after
        // the one below is taken.
        let recovery = self.recovery.lock().take();
        if let Some(recovery) = recovery {
            recovery.abort();
            let _ = recovery.await;
        }
        let generation = self.shared.current.write().take();
        if let Some(generation) = generation {
            generation.close(self.shared.config.operation_timeout).await;
        }
        Ok(())
    }
}

impl OnDriver for AmqpBus {
    fn driver_bus(&self) -> &dyn Bus {
        &self.bus
    }
}
