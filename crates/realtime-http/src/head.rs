//! A request head from another `http` version's types (actix-web 4 is on `http` 0.2).

use http::request::Parts;

/// The request head as [`Parts`], built from its method, URI and headers as text and bytes:
/// what an adapter on another `http` version hands the neutral layer. A header this `http`
/// refuses is left out rather than failing the request.
pub fn request_head<'a>(
    method: &str,
    uri: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Parts {
    let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
    let uri: http::Uri = uri.parse().unwrap_or_default();
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
    parts
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
        );
        assert_eq!(
            (parts.method.as_str(), parts.uri.query()),
            ("GET", Some("channel=a"))
        );
        assert_eq!(parts.headers["last-event-id"], "9-9");
        assert_eq!(parts.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(parts.headers.len(), 3);
    }
}
