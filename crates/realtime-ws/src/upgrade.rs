//! The upgrade, done here rather than by axum's `WebSocketUpgrade`: the connection keeps its
//! raw stream (after a close frame the server reads and discards what the client still
//! sends — closing with unread data resets the connection, and the client loses the close
//! code), and the handshake's headers get the neutral layer's checks.

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use realtime_http::ApiError;
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::{Role, WebSocketConfig};

/// The socket a connection runs on.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A checked upgrade request, to answer with [`Upgrade::response`] and then run.
pub(crate) struct Upgrade {
    on_upgrade: OnUpgrade,
    accept: HeaderValue,
}

impl Upgrade {
    /// Checks the handshake headers and takes the connection's upgrade from `parts`.
    pub(crate) fn from_parts(parts: &mut Parts) -> Result<Upgrade, ApiError> {
        let key = realtime_http::ws::check_upgrade(parts)?;
        let accept = tungstenite::handshake::derive_accept_key(key);
        let accept = HeaderValue::from_str(&accept).map_err(|_| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "accept key")
        })?;
        // Absent on a connection that cannot be taken over (HTTP/2, or a request not
        // served by hyper).
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "invalid_upgrade",
                "this connection cannot be upgraded (WebSocket needs HTTP/1.1)",
            )
        })?;
        Ok(Upgrade { on_upgrade, accept })
    }

    /// `101 Switching Protocols`.
    pub(crate) fn response(&self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept.clone());
        response
    }

    /// Waits for the connection to be handed over (once the 101 is written) and wraps it;
    /// `None` if it was not (the client went away).
    pub(crate) async fn socket(self, config: WebSocketConfig) -> Option<Socket> {
        let upgraded = self.on_upgrade.await.ok()?;
        Some(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        )
    }
}
