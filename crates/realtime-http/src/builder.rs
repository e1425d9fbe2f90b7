//! The one builder every framework adapter's endpoint is made with.

use std::fmt;
use std::marker::PhantomData;

use http::request::Parts;
use realtime_core::auth::Authorize;
use realtime_core::{Manager, Result};

/// An adapter's endpoint type, made from what an [`EndpointBuilder`] collected.
pub trait FromParts<C>: Sized {
    /// The endpoint serving `manager` with `config` (validated here) and `authorize`.
    fn from_parts(manager: Manager, config: C, authorize: Option<Authorize<Parts>>)
    -> Result<Self>;
}

/// Builds an endpoint `E` configured by `C`: the manager it serves, its configuration
/// (default: `C::default()`), and the authorization hook. Each adapter names it
/// (`SseHandlerBuilder`, `WsHandlerBuilder`).
pub struct EndpointBuilder<C, E> {
    manager: Manager,
    config: C,
    authorize: Option<Authorize<Parts>>,
    endpoint: PhantomData<fn() -> E>,
}

impl<C: Default, E: FromParts<C>> EndpointBuilder<C, E> {
    /// A builder for an endpoint serving `manager`'s channels.
    pub fn new(manager: Manager) -> Self {
        EndpointBuilder {
            manager,
            config: C::default(),
            authorize: None,
            endpoint: PhantomData,
        }
    }

    /// Uses `config`.
    pub fn config(mut self, config: C) -> Self {
        self.config = config;
        self
    }

    /// Runs `authorize` on the request head before every subscription (for WebSocket, also
    /// for every in-band `subscribe`, whose grant must keep the connection's tenant and
    /// subject); its grant sets the tenant and subject.
    ///
    /// The hook sees the request as [`http::request::Parts`] on every framework (headers,
    /// URI, extensions) and the [`SubscribeRequest`](realtime_core::SubscribeRequest) asked
    /// for. Browsers cannot send an `Authorization` header with `EventSource` or a WebSocket:
    /// take a token from a cookie or a query parameter as well.
    ///
    /// ```
    /// use http::request::Parts;
    /// use realtime_core::SubscribeRequest;
    /// use realtime_core::auth::{Authorize, Grant, Rejection};
    ///
    /// let hook = Authorize::new(|parts: &Parts, _asked: &SubscribeRequest| {
    ///     // Copy what the check needs out of the borrowed request; the future owns it.
    ///     let bearer = parts.headers.get("authorization")
    ///         .and_then(|v| v.to_str().ok())
    ///         .and_then(|v| v.strip_prefix("Bearer "))
    ///         .map(str::to_owned);
    ///     let from_query = parts.uri.query()
    ///         .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
    ///         .map(str::to_owned);
    ///     async move {
    ///         match bearer.or(from_query).as_deref() {
    ///             Some("acme-token") => Ok(Grant { tenant: Some("acme".into()), ..Grant::default() }),
    ///             Some(_) => Err(Rejection::forbidden("unknown token")),
    ///             None => Err(Rejection::unauthorized("a token is required")),
    ///         }
    ///     }
    /// });
    /// # let _: Authorize<Parts> = hook;
    /// ```
    pub fn authorize(mut self, authorize: Authorize<Parts>) -> Self {
        self.authorize = Some(authorize);
        self
    }

    /// Validates the configuration and builds the endpoint.
    pub fn build(self) -> Result<E> {
        E::from_parts(self.manager, self.config, self.authorize)
    }
}

impl<C: fmt::Debug, E> fmt::Debug for EndpointBuilder<C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointBuilder")
            .field("config", &self.config)
            .field("authorize", &self.authorize.is_some())
            .finish_non_exhaustive()
    }
}
