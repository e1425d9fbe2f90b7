//! The endpoint: request → authorization → subscription → event stream.

use std::sync::Arc;

use actix_web::body;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use futures_util::StreamExt;
use http::request::Parts;
use realtime_core::auth::Authorize;
use realtime_core::{Manager, Result};
use realtime_http::watch::watched;
use realtime_http::{EndpointBuilder, FromParts, SseConfig, SseEndpoint};

use crate::request::{error_response, parts_of};

/// The SSE endpoint on actix-web: glue over [`SseEndpoint`]. Cheap to clone (one per worker).
#[derive(Clone, Debug)]
pub struct SseHandler {
    endpoint: Arc<SseEndpoint>,
}

/// Builds a [`SseHandler`]: `SseHandler::builder(manager).config(…).authorize(…).build()`.
pub type SseHandlerBuilder = EndpointBuilder<SseConfig, SseHandler>;

impl FromParts<SseConfig> for SseHandler {
    fn from_parts(
        manager: Manager,
        config: SseConfig,
        authorize: Option<Authorize<Parts>>,
    ) -> Result<Self> {
        Ok(SseHandler {
            endpoint: Arc::new(SseEndpoint::new(manager, config, authorize)?),
        })
    }
}

impl SseHandler {
    /// A builder for an endpoint serving `manager`'s channels.
    pub fn builder(manager: Manager) -> SseHandlerBuilder {
        EndpointBuilder::new(manager)
    }

    /// `GET path` answered by this endpoint (and `HEAD`, as `GET` without the body):
    /// `App::new().service(handler.resource("/events"))`.
    pub fn resource(&self, path: &str) -> Resource {
        let (get, head) = (self.clone(), self.clone());
        web::resource(path)
            .route(web::get().to(move |request: HttpRequest| {
                let this = get.clone();
                async move { this.respond(&request).await }
            }))
            .route(web::head().to(move |request: HttpRequest| {
                let this = head.clone();
                async move { this.respond_to_head(&request).await }
            }))
    }

    /// Answers a `HEAD`: the checks a `GET` passes and the stream's headers, holding nothing
    /// open (no slot, no replay, no subscription).
    pub async fn respond_to_head(&self, request: &HttpRequest) -> HttpResponse {
        let checked = match parts_of(request) {
            Ok(parts) => self.endpoint.check(&parts).await,
            Err(error) => Err(error),
        };
        match checked {
            Ok(()) => {
                let mut response = HttpResponse::Ok();
                insert_headers(&mut response);
                response.body(body::None::new())
            }
            Err(error) => error_response(&error),
        }
    }

    /// Answers one request: an event stream, or a JSON error.
    pub async fn respond(&self, request: &HttpRequest) -> HttpResponse {
        let opened = match parts_of(request) {
            Ok(parts) => self.endpoint.open(&parts).await,
            Err(error) => Err(error),
        };
        match opened {
            Ok(stream) => {
                let mut response = HttpResponse::Ok();
                insert_headers(&mut response);
                // actix-web has no write timeout: a client that stops reading would hold its
                // subscription and slot for as long as its socket stays open. The watch
                // releases them once the server has held a chunk for `write_timeout`.
                let (body, watch) = watched(stream);
                let timeout = self.endpoint.config().write_timeout;
                actix_web::rt::spawn(watch.enforce(timeout, "sse"));
                // The stream never fails; actix wants the error type spelled out.
                response.streaming(body.map(|chunk| {
                    Ok::<_, actix_web::Error>(chunk.unwrap_or_else(|never| match never {}))
                }))
            }
            Err(error) => error_response(&error),
        }
    }
}

/// The headers of an event stream ([`SseEndpoint::HEADERS`]), on actix's `http` types.
fn insert_headers(response: &mut actix_web::HttpResponseBuilder) {
    for (name, value) in SseEndpoint::HEADERS {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.insert_header((name, value));
        }
    }
}
