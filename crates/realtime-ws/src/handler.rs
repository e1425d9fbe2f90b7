//! The upgrade: origin, headers, topics and authorization are checked before it.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::header;
use http::request::Parts;
use realtime_core::auth::Authorize;
use realtime_core::{Manager, Result};
use realtime_http::ws::{WsConfig, WsEndpoint};
use realtime_http::{ApiError, EndpointBuilder, FromParts};
use tungstenite::protocol::WebSocketConfig;

use crate::session;
use crate::upgrade::Upgrade;

/// Bytes tungstenite reads at a time; its buffer grows for a longer frame. Client messages
/// are small (subscribes, pings), and an idle connection keeps this much for its life.
const READ_BUFFER: usize = 512;

/// Bytes tungstenite gathers before it writes them out (its default).
const WRITE_BUFFER: usize = 128 * 1024;

/// The WebSocket endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WsHandler {
    endpoint: WsEndpoint,
}

/// Builds a [`WsHandler`]: `WsHandler::builder(manager).config(…).authorize(…).build()`.
pub type WsHandlerBuilder = EndpointBuilder<WsConfig, WsHandler>;

impl FromParts<WsConfig> for WsHandler {
    fn from_parts(
        manager: Manager,
        config: WsConfig,
        authorize: Option<Authorize<Parts>>,
    ) -> Result<Self> {
        Ok(WsHandler {
            endpoint: WsEndpoint::new(manager, config, authorize)?,
        })
    }
}

impl WsHandler {
    /// A builder for an endpoint serving `manager`'s channels.
    pub fn builder(manager: Manager) -> WsHandlerBuilder {
        EndpointBuilder::new(manager)
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
        let endpoint = &self.endpoint;
        endpoint.check_origin(&parts)?;
        if !parts.headers.contains_key(header::UPGRADE) {
            return Ok(WsEndpoint::upgrade_required()
                .map(Body::from)
                .into_response());
        }
        let upgrade = Upgrade::from_parts(&mut parts)?;
        let session = endpoint.accept(parts).await?;
        let config = endpoint.config();
        let (write_timeout, heartbeat, keepalive) = (
            config.write_timeout,
            config.heartbeat_interval,
            config.keepalive_interval,
        );
        let socket_config = WebSocketConfig::default()
            // tungstenite zero-fills its whole read buffer on every read and keeps it: 512
            // bytes, not its 128 KiB default (frames up to the limit still fit: the buffer
            // grows for a frame that needs it).
            .read_buffer_size(READ_BUFFER)
            // tungstenite requires its write buffer (flushed when full) below the maximum.
            .write_buffer_size(WRITE_BUFFER.min(config.max_write_buffer / 2))
            .max_write_buffer_size(config.max_write_buffer)
            .max_message_size(Some(config.read_limit))
            .max_frame_size(Some(config.read_limit));
        let response = upgrade.response();
        tokio::spawn(async move {
            if let Some(socket) = upgrade.socket(socket_config).await {
                session::Connection::new(socket, session, write_timeout, heartbeat, keepalive)
                    .await;
            }
        });
        Ok(response)
    }
}
