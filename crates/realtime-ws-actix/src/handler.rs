//! The upgrade: origin, headers, topics and authorization are checked before it.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::FromRequest;
use actix_web::body::{BodyStream, BoxBody};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use http::request::Parts;
use realtime_core::auth::Authorize;
use realtime_core::{Manager, Result};
use realtime_http::watch::watched;
use realtime_http::ws::{WsConfig, WsEndpoint};
use realtime_http::{ApiError, EndpointBuilder, FromParts};

use crate::guard::FrameGuard;
use crate::session;

/// The WebSocket endpoint on actix-web. Cheap to clone (one per worker).
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

/// The request head as the neutral layer's [`Parts`], with the client's address (`realtime_http::PeerAddr`).
fn parts_of(request: &HttpRequest) -> Result<Parts, ApiError> {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    realtime_http::request_head(
        request.method().as_str(),
        &request.uri().to_string(),
        headers,
        request.peer_addr(),
    )
}

/// An actix response from the neutral layer's.
fn actix_response(neutral: http::Response<bytes::Bytes>) -> HttpResponse {
    let status = StatusCode::from_u16(neutral.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in neutral.headers() {
        response.insert_header((name.as_str(), value.as_bytes()));
    }
    response.body(neutral.into_body())
}

impl WsHandler {
    /// A builder for an endpoint serving `manager`'s channels.
    pub fn builder(manager: Manager) -> WsHandlerBuilder {
        EndpointBuilder::new(manager)
    }

    /// `GET path` answered by this endpoint (and `HEAD`, answered as a `GET` without an
    /// upgrade is: 426): `App::new().service(handler.resource("/ws"))`.
    pub fn resource(&self, path: &str) -> Resource {
        let (get, head) = (self.clone(), self.clone());
        web::resource(path)
            .route(
                web::get().to(move |request: HttpRequest, body: web::Payload| {
                    let this = get.clone();
                    async move { this.respond(request, body).await }
                }),
            )
            .route(web::head().to(move |request: HttpRequest| {
                let this = head.clone();
                async move { this.respond_to_head(&request) }
            }))
    }

    /// A `HEAD`: the origin check, then 426 (a `HEAD` cannot upgrade).
    fn respond_to_head(&self, request: &HttpRequest) -> HttpResponse {
        let checked = parts_of(request).and_then(|parts| self.endpoint.check_origin(&parts));
        let neutral = match checked {
            Ok(()) => WsEndpoint::upgrade_required(),
            Err(error) => error.to_response(),
        };
        actix_response(neutral.map(|_| bytes::Bytes::new()))
    }

    /// Answers one request: the upgrade, or a JSON error.
    pub async fn respond(&self, request: HttpRequest, body: web::Payload) -> HttpResponse {
        match self.open(request, body).await {
            Ok(response) => response,
            Err(error) => actix_response(error.to_response()),
        }
    }

    async fn open(
        &self,
        request: HttpRequest,
        body: web::Payload,
    ) -> Result<HttpResponse, ApiError> {
        let parts = parts_of(&request)?;
        let endpoint = &self.endpoint;
        endpoint.check_origin(&parts)?;
        if !parts.headers.contains_key(http::header::UPGRADE) {
            return Ok(actix_response(WsEndpoint::upgrade_required()));
        }
        // The upgrade headers: 405 for a method other than GET, else 400, as on axum.
        if let Err(error) = actix_http::ws::verify_handshake(request.head()) {
            let status = match error {
                actix_http::ws::HandshakeError::GetMethodRequired => {
                    http::StatusCode::METHOD_NOT_ALLOWED
                }
                _ => http::StatusCode::BAD_REQUEST,
            };
            return Err(ApiError::new(status, "invalid_upgrade", error.to_string()));
        }
        // What actix-http leaves unchecked: the key's form, repeated headers.
        realtime_http::ws::check_upgrade(&parts)?;
        let session = endpoint.accept(parts).await?;
        let config = endpoint.config();
        // What the client sends passes the frame guard before actix-ws buffers it.
        let tripped = Arc::new(AtomicBool::new(false));
        let guarded = FrameGuard::new(body.into_inner(), config.read_limit, tripped.clone());
        let payload: actix_http::BoxedPayloadStream = Box::pin(guarded);
        let mut raw = actix_web::dev::Payload::Stream { payload };
        let body = web::Payload::from_request(&request, &mut raw)
            .await
            .map_err(|error| ApiError::bad_request("invalid_upgrade", error.to_string()))?;
        let (response, socket, messages) = actix_ws::handle(&request, body).map_err(|error| {
            ApiError::new(
                http::StatusCode::BAD_REQUEST,
                "invalid_upgrade",
                error.to_string(),
            )
        })?;
        let messages = messages
            .max_frame_size(config.read_limit)
            .aggregate_continuations()
            .max_continuation_size(config.read_limit);
        // actix-ws's body, watched: the session sees what the server takes of it.
        let (response, body) = response.into_parts();
        let (body, watch) = watched(session::BodyChunks(body));
        let response = response.set_body(BoxBody::new(BodyStream::new(body)));
        let socket = session::Socket {
            session: socket,
            watch,
            queued: 0,
            timing: session::Timing {
                write_timeout: config.write_timeout,
                heartbeat: config.heartbeat_interval,
                keepalive: config.keepalive_interval,
                max_write_buffer: config.max_write_buffer,
            },
        };
        actix_web::rt::spawn(session::run(socket, messages, session, tripped));
        Ok(response)
    }
}
