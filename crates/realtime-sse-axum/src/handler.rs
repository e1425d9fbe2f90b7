//! The endpoint: request → authorization → subscription → event stream.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::request::Parts;
use realtime_core::Manager;
use realtime_core::Result;
use realtime_core::auth::Authorize;
use realtime_http::{EndpointBuilder, FromParts, SseConfig, SseEndpoint};

use crate::error::ApiError;

/// The SSE endpoint on axum: glue over [`SseEndpoint`]. Cheap to clone.
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

    /// `GET` routed to this endpoint, for `Router::route("/events", handler.get())`.
    pub fn get<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let this = self.clone();
        get(move |request: Request| async move { this.serve(request).await })
    }

    /// Answers one request: an event stream, or a JSON error.
    pub async fn serve(&self, request: Request) -> Response {
        match self.open(request).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }
    }

    async fn open(&self, request: Request) -> Result<Response, ApiError> {
        let (parts, _body) = request.into_parts();
        // A `HEAD` gets the checks and the headers, and holds nothing open.
        let mut response = if parts.method == axum::http::Method::HEAD {
            self.endpoint.check(&parts).await?;
            Response::new(Body::empty())
        } else {
            let stream = self.endpoint.open(&parts).await?;
            Response::new(Body::from_stream(stream))
        };
        response.headers_mut().extend(SseEndpoint::HEADERS);
        Ok(response)
    }
}
