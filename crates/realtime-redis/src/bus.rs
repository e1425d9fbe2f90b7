//! The Redis pub/sub bus: one multiplexed subscriber connection per instance.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::RwLock;
use realtime_core::{Bus, BusMessage, BusSender, BusSubscription, Error, Event, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{Mutex, mpsc};

use crate::codec;
use crate::config::RedisBusConfig;
use crate::error::{connect_failed, from_redis};
use crate::store::connect;

/// Cross-instance fan-out over Redis pub/sub.
///
/// All of an instance's subscriptions share one RESP3 connection that resubscribes by itself
/// after it drops; each subscription is then told it was interrupted, and the manager repairs
/// what pub/sub lost from the store. Publishing uses a second connection, so a killed
/// subscriber connection never fails a publish.
pub struct RedisBus {
    config: RedisBusConfig,
    publisher: ConnectionManager,
    subscriber: ConnectionManager,
    table: Arc<Table>,
    /// Serialises SUBSCRIBE and UNSUBSCRIBE so a late unsubscribe cannot undo a subscribe.
    ops: Arc<Mutex<()>>,
    unsubscribe: mpsc::UnboundedSender<String>,
    closed: AtomicBool,
}

#[derive(Default)]
struct Table {
    channels: RwLock<HashMap<String, Channel>>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Channel {
    subscribers: HashMap<u64, BusSender>,
    /// The connection dropped since this channel was last confirmed subscribed.
    interrupted: bool,
}

impl Table {
    /// Handles a push from the subscriber connection; never blocks.
    fn push(&self, push: PushInfo) {
        match push.kind {
            PushKind::Message => {
                let [Value::BulkString(name), Value::BulkString(payload)] = push.data.as_slice()
                else {
                    return;
                };
                let Ok(name) = std::str::from_utf8(name) else {
                    return;
                };
                let channels = self.channels.read();
                let Some(channel) = channels.get(name) else {
                    return;
                };
                let Some((_, event_channel)) = name.split_once('\u{1f}') else {
                    return;
                };
                match codec::decode_message(event_channel, payload) {
                    Ok(event) => {
                        for sender in channel.subscribers.values() {
                            sender.send(BusMessage::Event(event.clone()));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(channel = event_channel, %error, "undecodable pub/sub message");
                        // The event itself is in the store: let the subscribers repair.
                        for sender in channel.subscribers.values() {
                            sender.interrupted();
                        }
                    }
                }
            }
            PushKind::Disconnection => {
                tracing::warn!("redis pub/sub connection lost; resubscribing");
                for channel in self.channels.write().values_mut() {
                    channel.interrupted = true;
                }
            }
            PushKind::Subscribe => {
                let Some(Value::BulkString(name)) = push.data.first() else {
                    return;
                };
                let Ok(name) = std::str::from_utf8(name) else {
                    return;
                };
                let mut channels = self.channels.write();
                if let Some(channel) = channels.get_mut(name).filter(|c| c.interrupted) {
                    channel.interrupted = false;
                    for sender in channel.subscribers.values() {
                        sender.interrupted();
                    }
                }
            }
            _ => {}
        }
    }
}

impl RedisBus {
    /// Connects the publisher and subscriber connections of `config` (validated first).
    pub async fn connect(config: RedisBusConfig) -> Result<Self> {
        config.validate()?;
        let publisher = connect(
            &config.url,
            config.operation_timeout,
            config.max_connections,
        )
        .await?;
        let table = Arc::new(Table::default());
        let sink = table.clone();
        let url = with_resp3(&config.url);
        let client =
            redis::Client::open(url.as_str()).map_err(|e| connect_failed(&config.url, e))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.operation_timeout))
            .set_response_timeout(Some(config.operation_timeout))
            .set_automatic_resubscription()
            .set_push_sender(move |push: PushInfo| {
                sink.push(push);
                Ok::<(), redis::aio::SendError>(())
            });
        let subscriber = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(|e| connect_failed(&config.url, e))?;
        let (unsubscribe, requests) = mpsc::unbounded_channel();
        let ops = Arc::new(Mutex::new(()));
        tokio::spawn(unsubscriber(
            requests,
            table.clone(),
            ops.clone(),
            subscriber.clone(),
        ));
        Ok(RedisBus {
            config,
            publisher,
            subscriber,
            table,
            ops,
            unsubscribe,
            closed: AtomicBool::new(false),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisBusConfig {
        &self.config
    }

    /// Whether the bus is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The pub/sub channel of an event channel. The separator cannot occur in a prefix or
    /// channel name.
    pub(crate) fn redis_channel(&self, channel: &str) -> String {
        format!("{}\u{1f}{channel}", self.config.prefix)
    }

    /// Pub/sub channels this instance is subscribed to.
    pub fn subscribed_channels(&self) -> usize {
        self.table.channels.read().len()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }
}

fn with_resp3(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}protocol=resp3")
}

/// Unsubscribes channels whose last subscription was dropped (drops cannot await).
async fn unsubscriber(
    mut requests: mpsc::UnboundedReceiver<String>,
    table: Arc<Table>,
    ops: Arc<Mutex<()>>,
    mut connection: ConnectionManager,
) {
    while let Some(name) = requests.recv().await {
        let _guard = ops.lock().await;
        let empty = {
            let mut channels = table.channels.write();
            let empty = channels
                .get(&name)
                .is_some_and(|c| c.subscribers.is_empty());
            if empty {
                channels.remove(&name);
            }
            empty
        };
        if empty && let Err(error) = connection.unsubscribe(&name).await {
            tracing::warn!(channel = %name, %error, "unsubscribe failed");
        }
    }
}

impl fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, event: &Event) -> Result<()> {
        self.check_open()?;
        let message = codec::encode_message(event);
        redis::cmd("PUBLISH")
            .arg(self.redis_channel(&event.channel))
            .arg(message)
            .exec_async(&mut self.publisher.clone())
            .await
            .map_err(|e| from_redis(e).into())
    }

    async fn subscribe(&self, channel: &str) -> Result<BusSubscription> {
        self.check_open()?;
        let name = self.redis_channel(channel);
        let _guard = self.ops.lock().await;
        let id = self.table.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, subscription) = {
            let table = Arc::downgrade(&self.table);
            let unsubscribe = self.unsubscribe.clone();
            let name = name.clone();
            BusSubscription::channel(self.config.subscription_capacity, move || {
                let Some(table) = table.upgrade() else { return };
                let now_empty = {
                    let mut channels = table.channels.write();
                    channels.get_mut(&name).is_some_and(|c| {
                        c.subscribers.remove(&id);
                        c.subscribers.is_empty()
                    })
                };
                if now_empty {
                    let _ = unsubscribe.send(name);
                }
            })
        };
        let first = {
            let mut channels = self.table.channels.write();
            let entry = channels.entry(name.clone()).or_default();
            entry.subscribers.insert(id, sender);
            entry.subscribers.len() == 1
        };
        if first && let Err(error) = self.subscriber.clone().subscribe(&name).await {
            self.table.channels.write().remove(&name);
            return Err(from_redis(error).into());
        }
        Ok(subscription)
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _guard = self.ops.lock().await;
        let names: Vec<String> = self
            .table
            .channels
            .write()
            .drain()
            .map(|(name, _)| name)
            .collect();
        let mut connection = self.subscriber.clone();
        for name in names {
            // The subscriptions already ended (their senders were dropped with the table).
            if let Err(error) = connection.unsubscribe(&name).await {
                tracing::debug!(channel = %name, %error, "unsubscribe on close failed");
            }
        }
        Ok(())
    }
}
