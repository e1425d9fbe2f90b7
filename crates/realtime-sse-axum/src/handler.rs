//! The endpoint: request → authorization → subscription → event stream.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::request::Parts;
use http::{HeaderValue, header};
use realtime_core::auth::Authorize;
use realtime_core::{ChannelRequest, Manager, Result, SubscribeRequest, sse};

use crate::config::SseConfig;
use crate::error::ApiError;
use crate::stream::{Prelude, SseBody};
use realtime_http::{Query, resume_position, settle_routing};

/// The SSE endpoint. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SseHandler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    manager: Manager,
    config: SseConfig,
    authorize: Option<Authorize<Parts>>,
}

/// Builds an [`SseHandler`].
#[derive(Debug)]
pub struct SseHandlerBuilder {
    manager: Manager,
    config: SseConfig,
    authorize: Option<Authorize<Parts>>,
}

impl SseHandlerBuilder {
    /// Uses `config` (default: [`SseConfig::default`]).
    pub fn config(mut self, config: SseConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs `authorize` before every subscription; its [`Grant`] sets the tenant and subject.
    pub fn authorize(mut self, authorize: Authorize<Parts>) -> Self {
        self.authorize = Some(authorize);
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<SseHandler> {
        self.config.validate()?;
        Ok(SseHandler {
            inner: Arc::new(Inner {
                manager: self.manager,
                config: self.config,
                authorize: self.authorize,
            }),
        })
    }
}

impl SseHandler {
    /// A builder for an endpoint serving `manager`'s channels.
    pub fn builder(manager: Manager) -> SseHandlerBuilder {
        SseHandlerBuilder {
            manager,
            config: SseConfig::default(),
            authorize: None,
        }
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
        let config = &self.inner.config;
        let query = Query::parse(parts.uri.query().unwrap_or_default());
        let channel = query.single(&config.channel_param)?.ok_or_else(|| {
            ApiError::bad_request(
                "invalid_channel",
                format!("the {:?} query parameter is required", config.channel_param),
            )
        })?;
        let resume_from = resume_position(&parts.headers, &query, &config.last_event_id_param)?;
        let mut subscription = SubscribeRequest {
            client_id: None,
            channels: vec![ChannelRequest {
                channel,
                resume_from,
            }],
            tenant: query.single(&config.tenant_param)?,
            subject: query.single(&config.subject_param)?,
        };
        settle_routing(
            self.inner.authorize.as_ref(),
            config.routing_from_query,
            &parts,
            &mut subscription,
        )
        .await?;
        let manager = &self.inner.manager;
        let realtime_core::Subscription { client, replay } =
            manager.subscribe(subscription).await?;
        // Replayed events are encoded as they are written, not all up front: an SSE frame
        // can be several times its event's size, and the client may read slowly.
        let mut prelude =
            VecDeque::with_capacity(3 + replay.iter().map(|r| r.events.len()).sum::<usize>());
        prelude.push_back(Prelude::Bytes(sse::encode_retry(
            manager.config().default_retry_ms,
        )));
        for channel in replay {
            if let Some(gap) = &channel.gap {
                prelude.push_back(Prelude::Bytes(sse::encode_gap(gap)));
            }
            prelude.extend(channel.events.into_iter().map(Prelude::Event));
        }
        prelude.push_back(Prelude::Bytes(sse::encode_comment("connected")));
        let body = SseBody::new(prelude, client, manager.config().heartbeat_interval);
        let mut response = Response::new(Body::from_stream(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(response)
    }
}
