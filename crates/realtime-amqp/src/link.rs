//! One connection to the broker and what hangs on it (a generation): its channels, this
//! instance's queue, the consumer feeding the inbox, and the probe that proves the route
//! from the exchange to the queue still exists. `recover.rs` replaces a broken one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use parking_lot::RwLock;
use realtime_core::driver::Inbox;
use realtime_core::{BackendErrorKind, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{AmqpBusConfig, AmqpTls};
use crate::error::{failed, lost, timed_out};

/// Deliveries the broker sends ahead of acknowledgements: what a stalled consumer can hold.
const PREFETCH: u16 = 1024;

/// Deliveries acknowledged together (one `multiple` ack).
const ACK_EVERY: u64 = 64;

/// The routing-key prefix of probes. No channel starts with `!`: plain names are ASCII
/// letters, digits and `-_.:/@`, and tenant-scoped ones start with `~` (with `~probe.` a
/// tenant named `probe.x` had its events taken for probes and dropped).
const PROBE_PREFIX: &str = "!probe.";

/// A connection, its two channels (one in confirm mode for publishing, one for the
/// topology and the consumer), this instance's queue, and when a probe last came back.
pub(crate) struct Generation {
    connection: Connection,
    pub(crate) publish: Channel,
    pub(crate) control: Channel,
    pub(crate) queue: ShortString,
    consumer: JoinHandle<()>,
    /// The routing key probes travel on; this queue is bound to it.
    pub(crate) probe_key: ShortString,
    /// When the last probe (or the generation's opening) was seen.
    pub(crate) last_echo: Arc<parking_lot::Mutex<Instant>>,
}

impl Generation {
    /// Whether the connection, both channels and the consumer are up (a queue deleted or a
    /// consumer cancelled by the broker ends the consumer), and a probe came back within
    /// `echo_within`.
    pub(crate) fn healthy(&self, echo_within: Duration) -> bool {
        self.connection.status().connected()
            && self.publish.status().connected()
            && self.control.status().connected()
            && !self.consumer.is_finished()
            && self.last_echo.lock().elapsed() <= echo_within
    }

    /// Closes the connection (the broker deletes the exclusive queue), within `bound`.
    pub(crate) async fn close(&self, bound: Duration) {
        self.consumer.abort();
        let _ = tokio::time::timeout(bound, self.connection.close(200, "closing".into())).await;
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.consumer.abort();
    }
}

/// What the driver, the consumer and the recovery task share.
pub(crate) struct Shared {
    pub(crate) config: AmqpBusConfig,
    pub(crate) inbox: Inbox,
    pub(crate) current: RwLock<Option<Arc<Generation>>>,
    pub(crate) down: AtomicBool,
    pub(crate) reconnects: AtomicU64,
    /// Woken when something on the connection failed.
    pub(crate) broken: Arc<Notify>,
}

impl Shared {
    /// The live generation, if the bus is connected.
    pub(crate) fn generation(&self) -> Option<Arc<Generation>> {
        if self.down.load(Ordering::Acquire) {
            return None;
        }
        self.current.read().clone()
    }

    /// Runs `request` within the operation timeout; a client error means the connection
    /// may be broken, and the recovery task is told.
    pub(crate) async fn bounded<T>(
        &self,
        operation: &'static str,
        channel: Option<&str>,
        request: impl Future<Output = lapin::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.config.operation_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.broken.notify_one();
                Err(lost(operation, channel, error))
            }
            Err(_) => {
                self.broken.notify_one();
                Err(timed_out(operation, channel))
            }
        }
    }
}

/// lapin's TLS settings: the extra CA and the client identity (PEM certificate and key).
fn tls_config(tls: &AmqpTls) -> OwnedTLSConfig {
    let identity = match (&tls.client_certificate_pem, &tls.client_key_pem) {
        (Some(pem), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: pem.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    OwnedTLSConfig {
        identity,
        cert_chain: tls.root_certificate_pem.clone(),
    }
}

/// Opens a generation: connects, declares the exchange and this instance's queue
/// (server-named, exclusive, deleted with the connection), and starts consuming it into
/// the inbox.
pub(crate) async fn open(shared: &Arc<Shared>) -> Result<Generation> {
    let config = &shared.config;
    let mut uri: AMQPUri = config
        .url
        .parse()
        .map_err(|error| failed("connect", None, BackendErrorKind::Protocol, error))?;
    // amq-protocol takes the host from the URL's domain and falls back to `localhost` for
    // an IP address: the bus would connect (and send its credentials) to localhost, and
    // check the certificate against that name.
    if let Some(host) = crate::config::host_of(&config.url) {
        uri.authority.host = host;
    }
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = u16::try_from(config.heartbeat.as_secs()).ok();
    }
    let properties = ConnectionProperties::default().with_connection_name("realtime-amqp".into());
    let runtime = lapin::runtime::default_runtime()
        .map_err(|error| failed("connect", None, BackendErrorKind::Config, error))?;
    let connecting =
        Connection::connect_uri_with_config(uri, properties, tls_config(&config.tls), runtime);
    let connection = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => return Err(lost("connect", None, error)),
        Err(_) => return Err(timed_out("connect", None)),
    };
    let setup = async {
        let publish = connection.create_channel().await?;
        publish
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let control = connection.create_channel().await?;
        control
            .exchange_declare(
                config.exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: config.durable_exchange,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let queue = control
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let queue = queue.name().clone();
        let probe_key: ShortString = format!("{PROBE_PREFIX}{}", queue.as_str()).into();
        control
            .queue_bind(
                queue.clone(),
                config.exchange.as_str().into(),
                probe_key.clone(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        // Acknowledged (in batches) so the broker sends at most PREFETCH ahead: a stalled
        // consumer holds a bounded number of messages; the rest wait in the broker.
        control
            .basic_qos(PREFETCH, BasicQosOptions::default())
            .await?;
        let consumer = control
            .basic_consume(
                queue.clone(),
                "".into(),
                BasicConsumeOptions {
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        lapin::Result::Ok((publish, control, queue, probe_key, consumer))
    };
    let (publish, control, queue, probe_key, consumer) =
        match tokio::time::timeout(config.operation_timeout, setup).await {
            Ok(Ok(parts)) => parts,
            Ok(Err(error)) => {
                let closing = connection.close(200, "setup failed".into());
                let _ = tokio::time::timeout(config.operation_timeout, closing).await;
                return Err(lost("declare", None, error));
            }
            Err(_) => return Err(timed_out("declare", None)),
        };
    let last_echo = Arc::new(parking_lot::Mutex::new(Instant::now()));
    // The consumer holds the inbox and the notifier, not the shared state (which holds
    // the generation): a bus dropped without `close` leaves no cycle behind.
    let consumer = tokio::spawn(consume(
        consumer,
        shared.inbox.clone(),
        shared.broken.clone(),
        last_echo.clone(),
    ));
    Ok(Generation {
        connection,
        publish,
        control,
        queue,
        consumer,
        probe_key,
        last_echo,
    })
}

/// Hands every delivery to the inbox (a probe only marks the time it came back),
/// acknowledging them in batches; reports the end of the stream (a lost connection, a
/// deleted queue, a consumer the broker cancelled).
async fn consume(
    mut consumer: lapin::Consumer,
    inbox: Inbox,
    broken: Arc<Notify>,
    last_echo: Arc<parking_lot::Mutex<Instant>>,
) {
    let mut unacknowledged = 0u64;
    while let Some(delivery) = consumer.next().await {
        let delivery = match delivery {
            Ok(delivery) => delivery,
            Err(error) => {
                tracing::debug!(%error, "amqp consumer failed");
                break;
            }
        };
        let key = delivery.routing_key.as_str();
        if key.starts_with(PROBE_PREFIX) {
            *last_echo.lock() = Instant::now();
        } else {
            inbox.frame(key, &delivery.data);
        }
        unacknowledged += 1;
        if unacknowledged >= ACK_EVERY {
            unacknowledged = 0;
            let acked = delivery.acker.ack(BasicAckOptions { multiple: true }).await;
            if acked.is_err() {
                break;
            }
        }
    }
    broken.notify_one();
}

/// Sends a probe through the exchange to this generation's queue, within the operation
/// timeout; the consumer marks it when it comes back. A missing exchange closes the publish
/// channel; lost bindings leave the echo stale: both show as unhealthy.
pub(crate) async fn probe(shared: &Shared, generation: &Generation) {
    let request = async {
        generation
            .publish
            .basic_publish(
                shared.config.exchange.as_str().into(),
                generation.probe_key.clone(),
                BasicPublishOptions::default(),
                b"",
                BasicProperties::default(),
            )
            .await?
            .await
    };
    let _ = tokio::time::timeout(shared.config.operation_timeout, request).await;
}

/// Binds this generation's queue to `channel`'s routing key.
pub(crate) async fn bind(shared: &Shared, generation: &Generation, channel: &str) -> Result<()> {
    let request = generation.control.queue_bind(
        generation.queue.clone(),
        shared.config.exchange.as_str().into(),
        channel.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    );
    shared.bounded("bind", Some(channel), request).await
}
