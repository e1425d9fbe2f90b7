//! Checks every backend's configuration shares.

/// Checks that a client certificate and its key are configured together (mutual TLS needs
/// both); the error names the missing one's field.
///
/// ```
/// use realtime_core::driver::certificate_with_key;
/// assert!(certificate_with_key(true, true, "tls.certificate", "tls.key").is_ok());
/// assert!(certificate_with_key(false, false, "tls.certificate", "tls.key").is_ok());
/// let missing = certificate_with_key(true, false, "tls.certificate", "tls.key");
/// assert!(matches!(missing, Err(realtime_core::Error::InvalidConfig { field: "tls.key", .. })));
/// ```
pub fn certificate_with_key(
    certificate: bool,
    key: bool,
    certificate_field: &'static str,
    key_field: &'static str,
) -> crate::Result<()> {
    let (field, reason) = match (certificate, key) {
        (true, false) => (key_field, "a client certificate needs its key"),
        (false, true) => (certificate_field, "a client key needs its certificate"),
        _ => return Ok(()),
    };
    Err(crate::Error::InvalidConfig {
        field,
        reason: reason.into(),
    })
}
