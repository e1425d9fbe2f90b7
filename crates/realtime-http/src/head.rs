//! A request head from another `http` version's types (actix-web 4 is on `http` 0.2).

use std::net::SocketAddr;

use http::request::Parts;

use crate::ApiError;

/// The address of the client's end of the connection, in [`Parts::extensions`] where the
/// adapter knows it, so an authorization hook can read it: the actix-web adapters put it
/// there, and so does `realtime_sse_axum::Server` (beside axum's `ConnectInfo`); under
/// `axum::serve`, use `into_make_service_with_connect_info` and read `ConnectInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The request head as [`Parts`], built from its method, URI and headers as text and bytes:
/// what an adapter on another `http` version hands the neutral layer. A header this `http`
/// refuses is left out rather than failing the request; a method or URI it refuses is a 400
/// (`invalid_request`) — never guessed. The client's address, when the adapter knows it, is
/// put in the extensions as [`PeerAddr`].
pub fn request_head<'a>(
    method: &str,
    uri: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    peer: Option<SocketAddr>,
) -> Result<Parts, ApiError> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| ApiError::bad_request("invalid_request", "the method is not valid"))?;
    let uri: http::Uri = uri.parse().map_err(|_| {
        ApiError::bad_request("invalid_request", "the request target is not a valid URI")
    })?;
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            parts.headers.append(name, value);
        }
    }
    if let Some(peer) = peer {
        parts.extensions.insert(PeerAddr(peer));
    }
    Ok(parts)
}

/// Checks the request's `Host`: more than one is a 400 `invalid_request` (RFC 9112 §3.2: the
/// server cannot tell which authority the request is for, and two parts of a deployment
/// could each believe a different one).
pub fn check_host(parts: &http::request::Parts) -> Result<(), crate::ApiError> {
    if parts.headers.get_all(http::header::HOST).iter().count() > 1 {
        return Err(ambiguous_host());
    }
    Ok(())
}

/// The answer to a request with more than one `Host` ([`check_host`]), for routes that
/// count the headers themselves.
pub fn ambiguous_host() -> crate::ApiError {
    crate::ApiError::bad_request("invalid_request", "more than one Host header")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_crosses_over_and_bad_headers_stay_behind() {
        let parts = request_head(
            "GET",
            "/events?channel=a",
            [
                ("last-event-id", &b"9-9"[..]),
                ("bad name", b"x"),
                ("x-a", b"1"),
                ("x-a", b"2"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            (parts.method.as_str(), parts.uri.query()),
            ("GET", Some("channel=a"))
        );
        assert_eq!(parts.headers["last-event-id"], "9-9");
        assert_eq!(parts.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(parts.headers.len(), 3);
    }

    #[test]
    fn a_bad_uri_or_method_is_a_400_not_a_guess() {
        for (method, uri) in [("GET", "/a b"), ("G E T", "/events")] {
            let error = request_head(method, uri, [], None).unwrap_err();
            assert_eq!(
                (error.status.as_u16(), error.code),
                (400, "invalid_request")
            );
        }
    }
}
