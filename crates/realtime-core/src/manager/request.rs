//! What callers ask of the manager, and how it is checked.

use std::sync::Arc;

use bytes::Bytes;

use super::Inner;
use super::client::Client;
use crate::error::{Error, Result};
use crate::event::{DataFormat, NewEvent};
use crate::gap::Gap;
use crate::routing::{self, Route};
use crate::shared::SharedEvent;

/// One channel of a subscription, with where to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRequest {
    /// The channel name.
    pub channel: String,
    /// The last position the client saw (an SSE `Last-Event-ID`), or `None` for a new
    /// subscriber. A token that is not a valid position yields an `unknown_position` gap.
    pub resume_from: Option<String>,
    /// For a new subscriber (no `resume_from`): the newest events to send before live ones,
    /// exact and position-stamped like any replay (at most
    /// [`replay_limit`](crate::ManagerConfig::replay_limit)). `None`: the manager's
    /// [`backlog_on_connect`](crate::ManagerConfig::backlog_on_connect) (0, live only, by
    /// default). Ignored when resuming.
    pub backlog: Option<usize>,
}

impl ChannelRequest {
    /// Live events of `channel` only.
    pub fn live(channel: impl Into<String>) -> Self {
        ChannelRequest {
            channel: channel.into(),
            resume_from: None,
            backlog: None,
        }
    }

    /// The newest `count` events of `channel`, then live ones (the Go package sent its
    /// `ReplayLimit` newest to every new subscriber).
    pub fn backlog(channel: impl Into<String>, count: usize) -> Self {
        ChannelRequest {
            channel: channel.into(),
            resume_from: None,
            backlog: Some(count),
        }
    }

    /// Events of `channel` after the position `token`.
    pub fn resume(channel: impl Into<String>, token: impl Into<String>) -> Self {
        ChannelRequest {
            channel: channel.into(),
            resume_from: Some(token.into()),
            backlog: None,
        }
    }
}

/// What a client subscribes to, and as whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// An id for the client; generated when `None`. Must be unique among connected clients.
    pub client_id: Option<String>,
    /// The channels; more can be joined later with [`Client::join`].
    pub channels: Vec<ChannelRequest>,
    /// The client's tenant (from the authorization hook, never from the client itself).
    pub tenant: Option<String>,
    /// The client's subject (e.g. a user id).
    pub subject: Option<String>,
}

impl SubscribeRequest {
    /// One channel, live only, no tenant or subject.
    pub fn channel(channel: impl Into<String>) -> Self {
        SubscribeRequest {
            channels: vec![ChannelRequest::live(channel)],
            ..Default::default()
        }
    }
}

/// An event to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// The channel.
    pub channel: String,
    /// Only clients of this tenant receive it; `None` for every client.
    pub tenant: Option<String>,
    /// Only clients with this subject receive it; `None` for every client.
    pub subject: Option<String>,
    /// The SSE event type; may not start with `realtime-`.
    pub event_type: Option<String>,
    /// The payload, as `format` says.
    pub data: Bytes,
    /// What `data` is: [`DataFormat::Text`] (the default) must be UTF-8,
    /// [`DataFormat::Json`] one JSON value, [`DataFormat::Binary`] anything. Each transport
    /// carries it as the format says (see [`DataFormat`]).
    pub format: DataFormat,
    /// Overrides the client's reconnection delay, in ms.
    pub retry_ms: Option<u32>,
    /// A key the caller picks per logical event (1 to 256 printable bytes): publishing again
    /// with the same key, while the first event is retained, returns the first event's
    /// position instead of storing a duplicate — so a publish whose answer was lost can be
    /// retried safely, on any instance. Keys are per tenant: another tenant's event with
    /// the same key is a different event.
    pub idempotency_key: Option<String>,
}

impl PublishRequest {
    /// The text `data` on `channel`, to everyone. `data` is a `String`, `Vec<u8>`,
    /// `&'static str`, `&'static [u8]` or [`Bytes`](crate::Bytes) (borrowed text:
    /// `.to_owned()` it).
    pub fn new(channel: impl Into<String>, data: impl Into<Bytes>) -> Self {
        PublishRequest {
            channel: channel.into(),
            data: data.into(),
            ..Default::default()
        }
    }

    /// `value` as JSON on `channel`, to everyone: WebSocket clients receive it as a JSON
    /// value, not a string to parse again. Fails if `value` cannot be serialised as JSON.
    ///
    /// ```
    /// # use realtime_core::PublishRequest;
    /// let request = PublishRequest::json("orders", &serde_json::json!({"id": 7}))?;
    /// # Ok::<(), realtime_core::Error>(())
    /// ```
    pub fn json(channel: impl Into<String>, value: &impl serde::Serialize) -> Result<Self> {
        let data = serde_json::to_vec(value).map_err(|e| Error::invalid("data", e.to_string()))?;
        Ok(PublishRequest {
            format: DataFormat::Json,
            ..PublishRequest::new(channel, data)
        })
    }

    /// The bytes `data` on `channel`, to everyone: a binary message on WebSocket, base64 on
    /// SSE.
    pub fn binary(channel: impl Into<String>, data: impl Into<Bytes>) -> Self {
        PublishRequest {
            format: DataFormat::Binary,
            ..PublishRequest::new(channel, data)
        }
    }

    /// Only for clients of `tenant`.
    ///
    /// ```
    /// # use realtime_core::PublishRequest;
    /// let request = PublishRequest::json("orders", &serde_json::json!({"id": 7}))?
    ///     .tenant("acme")
    ///     .subject("user-42")
    ///     .event_type("created")
    ///     .idempotency_key("order-7-created");
    /// # Ok::<(), realtime_core::Error>(())
    /// ```
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Only for clients with `subject` (e.g. a user id).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The SSE event type (`event:`); may not start with `realtime-`.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// The client's reconnection delay, in ms.
    pub fn retry_ms(mut self, retry_ms: u32) -> Self {
        self.retry_ms = Some(retry_ms);
        self
    }

    /// The key that makes a retried publish return the first event (see the field).
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// What the client missed on one channel, from [`Manager::subscribe`](crate::Manager::subscribe).
#[derive(Debug, Clone)]
pub struct Replay {
    /// The channel.
    pub channel: Arc<str>,
    /// The missed events in order (exact), or empty when there is a gap (unless
    /// [`ManagerConfig::replay_tail_after_gap`](crate::ManagerConfig::replay_tail_after_gap) is set).
    pub events: Vec<SharedEvent>,
    /// Set when the replay could not be exact; send it to the client before `events`.
    pub gap: Option<Gap>,
}

/// A new client and its replay.
#[derive(Debug)]
pub struct Subscription {
    /// The client; its live stream continues exactly where the replay ends.
    pub client: Client,
    /// One entry per channel that asked to resume or for a backlog, in request order.
    pub replay: Vec<Replay>,
}

impl Inner {
    /// The channel `channel` is kept under for `tenant`: its tenant-scoped name when channels
    /// are scoped and there is a tenant, else `channel` itself.
    pub(super) fn scoped(&self, tenant: Option<&str>, channel: &str) -> String {
        match tenant {
            Some(tenant) if self.config.tenant_scoped_channels => {
                routing::scoped_channel(tenant, channel)
            }
            _ => channel.to_owned(),
        }
    }

    /// `channels` under the names they are kept by for `tenant` ([`Inner::scoped`]).
    pub(super) fn scoped_requests(
        &self,
        tenant: Option<&str>,
        channels: Vec<ChannelRequest>,
    ) -> Vec<ChannelRequest> {
        channels
            .into_iter()
            .map(|c| ChannelRequest {
                channel: self.scoped(tenant, &c.channel),
                ..c
            })
            .collect()
    }

    /// Checks channel requests joining a client that already has `joined` channels.
    pub(super) fn validate_channels(
        &self,
        channels: &[ChannelRequest],
        joined: &[&str],
    ) -> Result<()> {
        let max = self.config.max_channels_per_client;
        if joined.len() + channels.len() > max {
            return Err(Error::invalid(
                "channels",
                format!("at most {max} channels per client"),
            ));
        }
        for (i, channel) in channels.iter().enumerate() {
            routing::validate_channel(&channel.channel, self.config.max_channel_len)?;
            let name = channel.channel.as_str();
            if channels[..i].iter().any(|c| c.channel == name) || joined.contains(&name) {
                return Err(Error::invalid(
                    "channels",
                    format!("{name:?} is listed twice"),
                ));
            }
            let limit = self.config.replay_limit;
            if channel.backlog.is_some_and(|count| count > limit) {
                return Err(Error::invalid(
                    "backlog",
                    format!("at most {limit} events (the replay limit)"),
                ));
            }
        }
        Ok(())
    }

    pub(super) fn validate_publish(&self, request: PublishRequest) -> Result<NewEvent> {
        routing::validate_channel(&request.channel, self.config.max_channel_len)?;
        if let Some(tenant) = &request.tenant {
            routing::validate_routing_key("tenant", tenant)?;
        }
        if let Some(subject) = &request.subject {
            routing::validate_routing_key("subject", subject)?;
        }
        if let Some(kind) = &request.event_type {
            routing::validate_event_type(kind)?;
        }
        if let Some(key) = &request.idempotency_key {
            routing::validate_routing_key("idempotency_key", key)?;
        }
        if request.data.len() > self.config.max_event_bytes {
            return Err(Error::invalid(
                "data",
                format!(
                    "{} bytes exceed the limit of {}",
                    request.data.len(),
                    self.config.max_event_bytes
                ),
            ));
        }
        request.format.check(&request.data)?;
        let idempotency_key = request
            .idempotency_key
            .map(|key| routing::scoped_idempotency_key(request.tenant.as_deref(), key));
        Ok(NewEvent {
            channel: self.scoped(request.tenant.as_deref(), &request.channel),
            tenant: request.tenant,
            subject: request.subject,
            event_type: request.event_type,
            data: request.data,
            format: request.format,
            retry_ms: request.retry_ms,
            timestamp: std::time::SystemTime::now(),
            idempotency_key,
        })
    }

    pub(super) fn validate_subscribe(&self, request: &SubscribeRequest) -> Result<Route> {
        self.validate_channels(&request.channels, &[])?;
        if let Some(id) = &request.client_id {
            routing::validate_routing_key("client_id", id)?;
        }
        let key = |field, value: &Option<String>| -> Result<Option<Arc<str>>> {
            match value {
                Some(v) => {
                    routing::validate_routing_key(field, v).map(|()| Some(Arc::from(v.as_str())))
                }
                None => Ok(None),
            }
        };
        Ok(Route {
            tenant: key("tenant", &request.tenant)?,
            subject: key("subject", &request.subject)?,
        })
    }
}
