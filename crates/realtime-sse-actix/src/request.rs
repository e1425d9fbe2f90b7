//! actix-web's request and response types (on `http` 0.2) to and from the neutral layer's
//! (on `http` 1).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use http::request::Parts;
use realtime_http::ApiError;

/// The request head as [`Parts`], what the neutral layer reads, with the client's
/// address (`realtime_http::PeerAddr`) in its extensions; a 400 for a head the neutral layer's `http` refuses.
pub fn parts_of(request: &HttpRequest) -> Result<Parts, ApiError> {
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    realtime_http::request_head(
        request.method().as_str(),
        &request.uri().to_string(),
        headers,
        request.peer_addr(),
    )
}

/// The JSON error response of `error` (status, `{"error":…,"message":…}`, `Retry-After` when
/// retrying may help, and any other header it carries).
pub fn error_response(error: &ApiError) -> HttpResponse {
    let neutral = error.to_response();
    let status = StatusCode::from_u16(neutral.status().as_u16())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in neutral.headers() {
        response.insert_header((name.as_str(), value.as_bytes()));
    }
    response.body(neutral.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use realtime_http::PeerAddr;

    #[test]
    fn a_request_head_crosses_over() {
        let request = actix_web::test::TestRequest::get()
            .uri("/events?channel=a&last_event_id=1-2")
            .insert_header(("last-event-id", "9-9"))
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .to_http_request();
        let parts = parts_of(&request).unwrap();
        assert_eq!(
            parts.extensions.get::<PeerAddr>().map(|peer| peer.0.port()),
            Some(5000)
        );
        assert_eq!(parts.uri.query(), Some("channel=a&last_event_id=1-2"));
        assert_eq!(parts.headers["last-event-id"], "9-9");
        assert_eq!(parts.method, http::Method::GET);
    }

    #[test]
    fn an_error_keeps_status_body_and_retry_after() {
        let response = error_response(&ApiError::from(realtime_core::Error::Closed));
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    }
}
