//! The WebSocket endpoint as an engine with no socket I/O: the checks before the upgrade
//! ([`WsEndpoint`]) and, after it, one connection's protocol ([`WsSession`]: the client's
//! queue → messages to write, a text message → replies, a close reason → a close code). An
//! adapter upgrades with its framework's WebSocket support and runs the socket loop: writes
//! what the session gives it (with its write timeout), sends pings every
//! [`WsConfig::heartbeat_interval`] and keepalives when asked, and maps its library's read
//! errors to [`close_code`]s.

mod config;
mod handshake;
mod origin;
mod protocol;
mod session;
mod socket;
mod topics;

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use realtime_core::auth::Authorize;
use realtime_core::{ChannelRequest, Manager, SubscribeRequest};

pub use config::{KeepaliveMessage, WsConfig, rfc3339_now};
pub use handshake::{check_key, check_upgrade};
pub use origin::{OriginCheck, OriginPolicy};
pub use realtime_core::message::Encoded;
pub use session::{Outgoing, Replies, WsSession, close_code};
pub use socket::{Step, Tick, Timers, timed_write};
pub use topics::{TopicError, check_topic, parse_topics};

use crate::error::ApiError;
use crate::query::Query;
use crate::routing::settle_routing;

/// The WebSocket endpoint, framework-neutral. Cheap to clone.
#[derive(Debug, Clone)]
pub struct WsEndpoint {
    shared: Arc<Shared>,
}

/// What the endpoint and every session of it share.
#[derive(Debug)]
struct Shared {
    manager: Manager,
    config: WsConfig,
    authorize: Option<Authorize<Parts>>,
}

impl WsEndpoint {
    /// An endpoint for `manager`'s channels; `config` is validated. `authorize` runs before
    /// every upgrade and again for every in-band `subscribe`.
    pub fn new(
        manager: Manager,
        config: WsConfig,
        authorize: Option<Authorize<Parts>>,
    ) -> realtime_core::Result<Self> {
        config.validate()?;
        Ok(WsEndpoint {
            shared: Arc::new(Shared {
                manager,
                config,
                authorize,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WsConfig {
        &self.shared.config
    }

    /// The manager.
    pub fn manager(&self) -> &Manager {
        &self.shared.manager
    }

    /// The first check, before anything else: one `Host` at most (400 `invalid_request`),
    /// then the `Origin` against the policy → 403 `origin_not_allowed`.
    pub fn check_origin(&self, parts: &Parts) -> Result<(), ApiError> {
        crate::check_host(parts)?;
        let header = parts.headers.get(header::ORIGIN);
        // A header that is not text is not a missing one.
        let origin = header.map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let config = &self.shared.config;
        let missing_allowed = header.is_none()
            && config.allow_missing_origin
            && matches!(config.origin_policy, OriginPolicy::AllowList(_));
        if missing_allowed || config.origin_policy.allows(origin) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("origin {:?} may not connect", origin.unwrap_or("(none)")),
            ))
        }
    }

    /// The answer to a request without an `Upgrade` header: 426 `upgrade_required`, with
    /// `Upgrade: websocket`.
    pub fn upgrade_required() -> http::Response<Bytes> {
        let mut response = ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            "this endpoint speaks WebSocket: send `Connection: Upgrade` and `Upgrade: websocket`",
        )
        .to_response();
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        response
    }

    /// The checks after the adapter validated the upgrade headers: the origin again, the topics (400
    /// `invalid_topic`), `tenant`/`subject` (400 `invalid_request` when repeated), the
    /// authorization hook (401/403), then the subscription (503 `too_many_connections`…).
    /// Subscribing before the upgrade lets a full instance answer 503, not a dead socket.
    pub async fn accept(&self, parts: Parts) -> Result<WsSession, ApiError> {
        // Checked here too, so an adapter that forgets it cannot open the door to cross-site
        // WebSocket hijacking.
        self.check_origin(&parts)?;
        let config = &self.shared.config;
        let query = Query::parse(parts.uri.query().unwrap_or_default());
        let raw_topics = query.all(&config.topics_param);
        let topics = parse_topics(
            &raw_topics.collect::<Vec<_>>().join(","),
            config.max_topic_count,
            config.max_topic_length,
        )
        .map_err(|e| {
            let subject = if e.topic.is_empty() {
                String::new()
            } else {
                format!("topic {:?}: ", e.topic)
            };
            ApiError::bad_request("invalid_topic", format!("{subject}{}", e.reason))
        })?;
        let backlog = crate::query::backlog(&query, "backlog")?;
        let mut subscription = SubscribeRequest {
            client_id: crate::routing::client_id_from(&parts, config.client_id_header.as_deref())?,
            channels: topics
                .iter()
                .map(|topic| ChannelRequest {
                    backlog,
                    ..ChannelRequest::live(topic)
                })
                .collect(),
            tenant: query.single("tenant")?,
            subject: query.single("subject")?,
        };
        settle_routing(
            self.shared.authorize.as_ref(),
            config.routing_from_query,
            &parts,
            &mut subscription,
        )
        .await?;
        let subscribed = self
            .shared
            .manager
            .subscribe(subscription)
            .await
            .map_err(|error| ApiError::from(error).over_capacity_as(config.over_capacity_status))?;
        // The hook sees the request again for every in-band subscribe.
        let parts = self.shared.authorize.is_some().then_some(parts);
        Ok(WsSession::new(
            subscribed.client,
            topics,
            self.shared.clone(),
            parts,
            subscribed.replay,
        ))
    }
}
