//! The authorization hook shared by every adapter.
//!
//! An adapter calls the hook before subscribing, with the request head `R` and the
//! subscription the client asked for. Every adapter of this workspace uses
//! `R = http::request::Parts` (re-exported by each as `Parts`): on axum the request's own
//! head, extensions included; on actix a copy of its method, URI, version and headers. The hook answers with the [`Grant`] — the tenant and subject used for
//! routing — or a [`Rejection`]. When a hook is set, the tenant and subject a client puts in
//! its query string are never used for routing.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::manager::SubscribeRequest;

/// Who the client is, as far as routing is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The tenant whose events the client may receive (with untenanted ones).
    pub tenant: Option<String>,
    /// The subject addressed events must name to reach the client.
    pub subject: Option<String>,
    /// The client's id, to end its streams with
    /// [`Manager::disconnect_everywhere`](crate::Manager::disconnect_everywhere) (e.g. a user
    /// id, or an id per login). Not a secret: it is sent to the client and may be logged —
    /// never a session token. Several connections may share it (a user's tabs); a disconnect
    /// closes them all. `None` keeps the one the request carried, or a generated one.
    pub client_id: Option<String>,
}

/// A refused subscription: the adapter answers with `status` and a JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status, 403 unless set otherwise (401 for a missing credential, say).
    pub status: u16,
    /// A message for the client; keep secrets out of it.
    pub message: String,
}

impl Rejection {
    /// 403 Forbidden with `message`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Rejection {
            status: 403,
            message: message.into(),
        }
    }

    /// 401 Unauthorized with `message`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Rejection {
            status: 401,
            message: message.into(),
        }
    }
}

/// The future a hook returns.
pub type AuthorizeFuture = Pin<Box<dyn Future<Output = Result<Grant, Rejection>> + Send>>;

/// An authorization hook over the framework request type `R`.
///
/// Build one with [`Authorize::new`] from a closure that copies what it needs out of the
/// borrowed request and returns a future:
///
/// With an adapter, `R` is `Parts` (see the adapter crates' docs for a hook over it); here a
/// stand-in request type keeps this crate free of HTTP types:
///
/// ```
/// use realtime_core::auth::{Authorize, Grant, Rejection};
///
/// struct Request { token: Option<String> }
/// let hook = Authorize::new(|req: &Request, _sub| {
///     let token = req.token.clone();
///     async move {
///         match token.as_deref() {
///             Some("secret-a") => Ok(Grant { tenant: Some("a".into()), ..Grant::default() }),
///             _ => Err(Rejection::unauthorized("missing or unknown token")),
///         }
///     }
/// });
/// ```
pub struct Authorize<R> {
    hook: Arc<HookFn<R>>,
}

type HookFn<R> = dyn Fn(&R, &SubscribeRequest) -> AuthorizeFuture + Send + Sync;

impl<R> Authorize<R> {
    /// Wraps `hook`.
    pub fn new<F, Fut>(hook: F) -> Self
    where
        F: Fn(&R, &SubscribeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Grant, Rejection>> + Send + 'static,
    {
        Authorize {
            hook: Arc::new(move |req, sub| Box::pin(hook(req, sub))),
        }
    }

    /// Runs the hook.
    pub fn check(&self, request: &R, subscription: &SubscribeRequest) -> AuthorizeFuture {
        (self.hook)(request, subscription)
    }
}

impl<R> Clone for Authorize<R> {
    fn clone(&self) -> Self {
        Authorize {
            hook: self.hook.clone(),
        }
    }
}

impl<R> fmt::Debug for Authorize<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorize(..)")
    }
}
