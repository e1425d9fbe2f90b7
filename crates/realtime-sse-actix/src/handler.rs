//! The endpoint: request → authorization → subscription → event stream.

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Resource, web};
use futures_util::StreamExt;
use http::request::Parts;
use realtime_core::auth::Authorize;
use realtime_core::{Manager, Result};
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

    /// `GET path` answered by this endpoint: `App::new().service(handler.resource("/events"))`.
    pub fn resource(&self, path: &str) -> Resource {
        let this = self.clone();
        web::resource(path).route(web::get().to(move |request: HttpRequest| {
            let this = this.clone();
            async move { this.respond(&request).await }
        }))
    }

    /// Answers one request: an event stream, or a JSON error.
    pub async fn respond(&self, request: &HttpRequest) -> HttpResponse {
        let parts = parts_of(request);
        match self.endpoint.open(&parts).await {
            Ok(stream) => {
                let mut response = HttpResponse::Ok();
                for (name, value) in SseEndpoint::HEADERS {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_str().as_bytes()),
                        HeaderValue::from_bytes(value.as_bytes()),
                    ) {
                        response.insert_header((name, value));
                    }
                }
                // The stream never fails; actix wants the error type spelled out.
                response.streaming(stream.map(|chunk| {
                    Ok::<_, actix_web::Error>(chunk.unwrap_or_else(|never| match never {}))
                }))
            }
            Err(error) => error_response(&error),
        }
    }
}
