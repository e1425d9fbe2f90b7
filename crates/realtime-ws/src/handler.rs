//! The upgrade: origin, headers, topics and authorization are checked before it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use realtime_core::auth::Authorize;
use realtime_core::{ChannelRequest, Manager, Result, SubscribeRequest};
use realtime_http::{ApiError, Query, settle_routing};

use crate::config::WsConfig;
use crate::endpoint::Inner;
use crate::session;
use crate::topics::parse_topics;

/// Initial read buffer of a connection.
const READ_BUFFER: usize = 4 * 1024;

/// The WebSocket endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WsHandler {
    inner: Arc<Inner>,
}

/// Builds a [`WsHandler`].
#[derive(Debug)]
pub struct WsHandlerBuilder {
    manager: Manager,
    config: WsConfig,
    authorize: Option<Authorize<Parts>>,
}

impl WsHandlerBuilder {
    /// Uses `config` (default: [`WsConfig::default`]).
    pub fn config(mut self, config: WsConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs `authorize` before every upgrade (the Go package's `RequireAuth`), and again for
    /// every in-band `subscribe` with the topics it adds: a client joins no channel the hook
    /// has not seen. The upgrade's [`Grant`] sets the tenant and subject; a later grant must
    /// name the same ones.
    pub fn authorize(mut self, authorize: Authorize<Parts>) -> Self {
        self.authorize = Some(authorize);
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<WsHandler> {
        self.config.validate()?;
        Ok(WsHandler {
            inner: Arc::new(Inner {
                manager: self.manager,
                config: self.config,
                authorize: self.authorize,
            }),
        })
    }
}

impl WsHandler {
    /// A builder for an endpoint serving `manager`'s channels.
    pub fn builder(manager: Manager) -> WsHandlerBuilder {
        WsHandlerBuilder {
            manager,
            config: WsConfig::default(),
            authorize: None,
        }
    }

    /// `GET` routed to this endpoint, for `Router::route("/ws", handler.get())`.
    pub fn get<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let this = self.clone();
        get(move |request: Request| async move { this.serve(request).await })
    }

    /// Answers one request: the upgrade, or a JSON error.
    pub async fn serve(&self, request: Request) -> Response {
        match self.open(request).await {
            Ok(response) => response,
            Err(error) => error.to_response().map(Body::from).into_response(),
        }
    }

    async fn open(&self, request: Request) -> Result<Response, ApiError> {
        let (mut parts, _body) = request.into_parts();
        let config = &self.inner.config;
        let origin = parts
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if !config.origin_policy.allows(origin) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("origin {:?} may not connect", origin.unwrap_or("(none)")),
            ));
        }
        if !parts.headers.contains_key(header::UPGRADE) {
            let mut error = ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "upgrade_required",
                "this endpoint speaks WebSocket: send `Connection: Upgrade` and `Upgrade: websocket`",
            )
            .to_response();
            error
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return Ok(error.map(Body::from).into_response());
        }
        let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &())
            .await
            .map_err(|rejection| {
                ApiError::new(rejection.status(), "invalid_upgrade", rejection.body_text())
            })?;
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
        let mut subscription = SubscribeRequest {
            client_id: None,
            channels: topics.iter().map(ChannelRequest::live).collect(),
            tenant: query.single("tenant")?,
            subject: query.single("subject")?,
        };
        settle_routing(
            self.inner.authorize.as_ref(),
            config.routing_from_query,
            &parts,
            &mut subscription,
        )
        .await?;
        // Subscribing before the upgrade lets a full instance answer 503, not a dead socket.
        let client = self.inner.manager.subscribe(subscription).await?.client;
        let inner = self.inner.clone();
        // The hook sees the request again for every in-band subscribe.
        let parts = self.inner.authorize.is_some().then_some(parts);
        Ok(upgrade
            // tungstenite zero-fills its whole read buffer on every read: keep it small so an
            // idle connection costs kilobytes, not 128 KiB (frames up to the limit still fit:
            // the buffer grows for a frame that needs it).
            .read_buffer_size(READ_BUFFER)
            .max_write_buffer_size(config.max_write_buffer)
            .max_message_size(config.read_limit)
            .max_frame_size(config.read_limit)
            .on_upgrade(move |socket| session::run(socket, client, topics, inner, parts)))
    }
}
