//! The bus's subscriber table: which local subscriptions listen to which pub/sub channel,
//! and what to do with each push the subscriber connection delivers.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use parking_lot::RwLock;
use realtime_core::{BusMessage, BusSender};
use redis::{PushInfo, PushKind, Value};

use crate::codec;

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) channels: RwLock<HashMap<String, Channel>>,
    pub(crate) next_id: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Channel {
    pub(crate) subscribers: HashMap<u64, BusSender>,
    /// The connection dropped since this channel was last confirmed subscribed: its
    /// subscribers are told they were interrupted once it is subscribed again.
    pub(crate) interrupted: bool,
}

impl Table {
    /// Handles a push from the subscriber connection; never blocks.
    pub(crate) fn push(&self, push: PushInfo) {
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
                    Ok((event, origin)) => {
                        for sender in channel.subscribers.values() {
                            sender.send(BusMessage::Event(event.clone(), origin));
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
                self.mark_interrupted();
            }
            PushKind::Subscribe => {
                let Some(Value::BulkString(name)) = push.data.first() else {
                    return;
                };
                if let Ok(name) = std::str::from_utf8(name) {
                    self.confirmed(name);
                }
            }
            _ => {}
        }
    }

    /// Every channel may have lost messages from now until it is confirmed subscribed again.
    pub(crate) fn mark_interrupted(&self) {
        for channel in self.channels.write().values_mut() {
            channel.interrupted = true;
        }
    }

    /// `name` is subscribed on a live connection: if it was interrupted, tell its
    /// subscribers (only now, so that their repair cannot miss what arrives next).
    pub(crate) fn confirmed(&self, name: &str) {
        let mut channels = self.channels.write();
        if let Some(channel) = channels.get_mut(name).filter(|c| c.interrupted) {
            channel.interrupted = false;
            for sender in channel.subscribers.values() {
                sender.interrupted();
            }
        }
    }
}
