//! Who the client is for routing: the authorization hook's grant, or (when allowed) the query.

use http::request::Parts;
use realtime_core::SubscribeRequest;
use realtime_core::auth::{Authorize, Grant};

use crate::error::ApiError;

/// The client id a request carries in `header` (when the endpoint reads one): `None` when
/// absent; a value that is not text is 400 `invalid_client_id`. The manager checks the rest
/// (length, control characters).
pub(crate) fn client_id_from(
    parts: &Parts,
    header: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(value) = header.and_then(|name| parts.headers.get(name)) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(id) if !id.is_empty() => Ok(Some(id.to_owned())),
        Ok(_) => Ok(None),
        Err(_) => Err(ApiError::bad_request(
            "invalid_client_id",
            "the client id header is not text",
        )),
    }
}

/// Settles `subscription`'s tenant, subject and client id before it reaches the manager.
///
/// With a hook, its [`Grant`] replaces whatever the client asked for, and a rejection becomes
/// 401 `unauthorized` or 403 `forbidden` (or the status the hook chose). Without one, a
/// request naming a tenant or subject gets 400 `routing_not_allowed` unless
/// `routing_from_query` says the query may be trusted. Shared by the SSE and WebSocket
/// endpoints.
pub async fn settle_routing(
    authorize: Option<&Authorize<Parts>>,
    routing_from_query: bool,
    parts: &Parts,
    subscription: &mut SubscribeRequest,
) -> Result<(), ApiError> {
    match authorize {
        Some(authorize) => {
            let Grant {
                tenant,
                subject,
                client_id,
            } = authorize
                .check(parts, subscription)
                .await
                .map_err(ApiError::from)?;
            subscription.tenant = tenant;
            subscription.subject = subject;
            if client_id.is_some() {
                subscription.client_id = client_id;
            }
            Ok(())
        }
        None if !routing_from_query
            && (subscription.tenant.is_some() || subscription.subject.is_some()) =>
        {
            Err(ApiError::bad_request(
                "routing_not_allowed",
                "tenant and subject come from the authorization hook; this endpoint has none",
            ))
        }
        None => Ok(()),
    }
}
