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
