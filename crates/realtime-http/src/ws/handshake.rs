//! The opening handshake's headers (RFC 6455 §4.2.1), checked the same way by every
//! adapter before it upgrades: a request that is not a well-formed upgrade gets 400
//! `invalid_upgrade`, not a connection.

use http::request::Parts;
use http::{HeaderMap, header};

use crate::error::ApiError;

/// Checks the upgrade headers of `parts`: `Connection` lists `upgrade`, `Upgrade` is
/// `websocket`, `Sec-WebSocket-Version` is `13`, and `Sec-WebSocket-Key` is one key
/// ([`check_key`]). Returns the key.
pub fn check_upgrade(parts: &Parts) -> Result<&[u8], ApiError> {
    let invalid = |message: &str| Err(ApiError::bad_request("invalid_upgrade", message));
    if !lists_token(&parts.headers, header::CONNECTION, "upgrade") {
        return invalid("`Connection` must list `upgrade`");
    }
    if !lists_token(&parts.headers, header::UPGRADE, "websocket") {
        return invalid("`Upgrade` must be `websocket`");
    }
    let version = parts.headers.get_all(header::SEC_WEBSOCKET_VERSION);
    if version.iter().count() != 1 || version.iter().all(|v| v.as_bytes() != b"13") {
        return invalid("`Sec-WebSocket-Version` must be 13 (once)");
    }
    let mut keys = parts.headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return invalid("one `Sec-WebSocket-Key` is required");
    };
    check_key(key.as_bytes())?;
    Ok(key.as_bytes())
}

/// Checks a `Sec-WebSocket-Key`: the base64 of 16 bytes — 22 characters of the base64
/// alphabet (the last carrying no stray bits) and `==`, as every client generates it.
pub fn check_key(key: &[u8]) -> Result<(), ApiError> {
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let valid = key.len() == 24
        && key[..22].iter().all(|&b| alphabet(b))
        // 16 bytes are 128 bits; 22 characters carry 132: the last one's low 4 bits are 0.
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"==";
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_upgrade",
            "`Sec-WebSocket-Key` must be the base64 of 16 bytes",
        ))
    }
}

/// Whether a comma-separated header lists `token` (case-insensitive), in any of its lines.
fn lists_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_base64_of_16_bytes() {
        check_key(b"dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        for bad in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ",
            b"dGhlIHNhbXBsZSBub25jZR==",
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25j*Q==",
            b"dGhlIHNhbXBsZSBub25jZQ==AA",
            b"AAAA",
        ] {
            assert!(check_key(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn upgrade_headers() {
        let parts = |headers: &[(&str, &str)]| {
            let mut request = http::Request::builder();
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.body(()).unwrap().into_parts().0
        };
        let good = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            check_upgrade(&parts(&good)).unwrap(),
            b"dGhlIHNhbXBsZSBub25jZQ=="
        );
        for skip in 0..good.len() {
            let mut headers = good.to_vec();
            headers.remove(skip);
            assert!(check_upgrade(&parts(&headers)).is_err(), "without {skip}");
        }
        let mut two_keys = good.to_vec();
        two_keys.push(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(check_upgrade(&parts(&two_keys)).is_err());
    }
}
