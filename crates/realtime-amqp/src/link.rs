//! One connection to the broker and what hangs on it (a generation), and the task that
//! replaces a broken one: reconnect, redeclare, rebind every subscribed channel, then tell
//! each subscription it was interrupted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use parking_lot::RwLock;
use realtime_core::driver::Inbox;
use realtime_core::metrics as m;
use realtime_core::{BackendErrorKind, Result};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::AmqpBusConfig;
use crate::error::{failed, lost, timed_out};

/// A connection, its two channels (one in confirm mode for publishing, one for the
/// topology and the consumer) and this instance's queue.
pub(crate) struct Generation {
    connection: Connection,
    pub(crate) publish: Channel,
    pub(crate) control: Channel,
    pub(crate) queue: ShortString,
    consumer: JoinHandle<()>,
}

impl Generation {
    /// Whether the connection and both channels are up.
    pub(crate) fn healthy(&self) -> bool {
        self.connection.status().connected()
            && self.publish.status().connected()
            && self.control.status().connected()
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

/// What the driver and the recovery task share.
pub(crate) struct Shared {
    pub(crate) config: AmqpBusConfig,
    pub(crate) inbox: Inbox,
    pub(crate) current: RwLock<Option<Arc<Generation>>>,
    pub(crate) down: AtomicBool,
    pub(crate) reconnects: AtomicU64,
    /// Woken when something on the connection failed.
    pub(crate) broken: Notify,
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

/// Opens a generation: connects, declares the exchange and this instance's queue
/// (server-named, exclusive, deleted with the connection), and starts consuming it into
/// the inbox.
pub(crate) async fn open(shared: &Arc<Shared>) -> Result<Generation> {
    let config = &shared.config;
    let mut uri: AMQPUri = config
        .url
        .parse()
        .map_err(|error| failed("connect", None, BackendErrorKind::Protocol, error))?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = u16::try_from(config.heartbeat.as_secs()).ok();
    }
    let properties = ConnectionProperties::default().with_connection_name("realtime-amqp".into());
    let connecting = Connection::connect_uri(uri, properties);
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
        // No acknowledgements: the queue is this connection's alone and dies with it, so a
        // message lost with the connection is reported as an interruption anyway.
        let consumer = control
            .basic_consume(
                queue.clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    exclusive: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        lapin::Result::Ok((publish, control, queue, consumer))
    };
    let (publish, control, queue, mut consumer) =
        match tokio::time::timeout(config.operation_timeout, setup).await {
            Ok(Ok(parts)) => parts,
            Ok(Err(error)) => {
                let _ = connection.close(200, "setup failed".into()).await;
                return Err(lost("declare", None, error));
            }
            Err(_) => return Err(timed_out("declare", None)),
        };
    let reader = shared.clone();
    let consumer = tokio::spawn(async move {
        while let Some(delivery) = consumer.next().await {
            match delivery {
                Ok(delivery) => reader
                    .inbox
                    .frame(delivery.routing_key.as_str(), &delivery.data),
                Err(error) => {
                    tracing::debug!(%error, "amqp consumer failed");
                    break;
                }
            }
        }
        reader.broken.notify_one();
    });
    Ok(Generation {
        connection,
        publish,
        control,
        queue,
        consumer,
    })
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

/// Watches the live generation for as long as the bus lives and replaces it when it breaks.
pub(crate) async fn recover(shared: Arc<Shared>) {
    loop {
        // A failure reported, or a check every second (a connection can die quietly).
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.broken.notified()).await;
        let healthy = shared.current.read().as_ref().is_some_and(|g| g.healthy());
        if healthy {
            continue;
        }
        if !shared.down.swap(true, Ordering::AcqRel) {
            tracing::warn!("amqp connection lost; the bus reconnects by itself");
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "amqp").set(0.0);
        }
        shared.inbox.connection_lost();
        let old = shared.current.write().take();
        if let Some(old) = old {
            old.close(Duration::from_millis(100)).await;
        }
        reconnect(&shared).await;
    }
}

/// Opens generations until one is up with every subscribed channel bound again, then
/// reports each channel resubscribed. Under the inbox's lock, so no subscribe runs meanwhile.
async fn reconnect(shared: &Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        {
            let _guard = shared.inbox.lock().await;
            match open(shared).await {
                Ok(generation) => {
                    let channels = shared.inbox.to_resubscribe(true);
                    let mut bound = true;
                    for channel in &channels {
                        if let Err(error) = bind(shared, &generation, channel).await {
                            tracing::debug!(%error, "rebinding after a reconnect failed");
                            bound = false;
                            break;
                        }
                    }
                    if bound {
                        *shared.current.write() = Some(Arc::new(generation));
                        // Counted before the bus says it is connected.
                        shared.reconnects.fetch_add(1, Ordering::Relaxed);
                        shared.down.store(false, Ordering::Release);
                        for channel in &channels {
                            shared.inbox.resubscribed(channel);
                        }
                        metrics::gauge!(m::BUS_CONNECTED, "backend" => "amqp").set(1.0);
                        metrics::counter!(m::BUS_RECONNECTS, "backend" => "amqp").increment(1);
                        tracing::info!(
                            "amqp connection back; subscriptions told they were interrupted"
                        );
                        return;
                    }
                    generation.close(Duration::from_millis(100)).await;
                }
                Err(error) => tracing::debug!(%error, "amqp reconnect failed"),
            }
        }
        // A back-off between attempts, not a synchronisation.
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.config.reconnect_delay_max);
    }
}
