//! TLS for `https://` and `wss://`: rustls on aws-lc-rs, trusting the system's roots and any
//! added by the application.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::Error;

/// Which certificate authorities a TLS connection trusts.
#[derive(Clone, Debug)]
pub(crate) struct TlsRoots {
    /// The operating system's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR` when set).
    pub(crate) native: bool,
    /// PEM documents added by the application, each one or more certificates.
    pub(crate) pem: Vec<Vec<u8>>,
}

impl Default for TlsRoots {
    fn default() -> Self {
        TlsRoots {
            native: true,
            pem: Vec::new(),
        }
    }
}

impl TlsRoots {
    /// The client configuration both transports use. Fails when a PEM document holds no
    /// certificate or a bad one, or when no root at all is trusted (a machine without a CA
    /// bundle and none added): every handshake would fail, so it is a configuration error,
    /// said once at build instead of on every reconnect.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut roots = RootCertStore::empty();
        let mut native_errors = Vec::new();
        if self.native {
            let (certs, errors) = native_roots();
            // A bundle with a few unreadable entries still serves the rest, as in browsers.
            roots.add_parsable_certificates(certs.iter().cloned());
            native_errors.clone_from(errors);
        }
        for (index, pem) in self.pem.iter().enumerate() {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| Error::config("root_certificate", format!("document {index}: {e}")))?;
            if certs.is_empty() {
                return Err(Error::config(
                    "root_certificate",
                    format!("document {index} holds no PEM certificate"),
                ));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    Error::config("root_certificate", format!("document {index}: {e}"))
                })?;
            }
        }
        if roots.is_empty() {
            let why = if !self.native {
                "system roots are off and none were added".to_owned()
            } else if native_errors.is_empty() {
                "the system has none; add one with root_certificate_pem".to_owned()
            } else {
                format!(
                    "the system's could not be read: {}",
                    native_errors.join("; ")
                )
            };
            return Err(Error::config(
                "root_certificate",
                format!("no trusted root: {why}"),
            ));
        }
        config(roots).map(Arc::new)
    }
}

/// The system's roots and the errors met reading them: read once per process (it is blocking
/// file I/O, and `build` usually runs on an async runtime's thread).
fn native_roots() -> &'static (Vec<CertificateDer<'static>>, Vec<String>) {
    static ROOTS: OnceLock<(Vec<CertificateDer<'static>>, Vec<String>)> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let errors = found.errors.iter().map(ToString::to_string).collect();
        (found.certs, errors)
    })
}

/// The configuration for a plain `http://` client, which must have one: it trusts no root,
/// and no handshake ever uses it.
pub(crate) fn unused_config() -> Result<rustls::ClientConfig, Error> {
    config(RootCertStore::empty())
}

fn config(roots: RootCertStore) -> Result<rustls::ClientConfig, Error> {
    // The provider is named, not taken from process-wide state: the client works whatever
    // else in the process installed (or did not install) as the default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("tls", e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_without_a_certificate_is_refused() {
        let roots = TlsRoots {
            native: false,
            pem: vec![b"not a certificate".to_vec()],
        };
        let error = roots.client_config().unwrap_err();
        assert!(
            error.to_string().contains("holds no PEM certificate"),
            "{error}"
        );
    }

    #[test]
    fn no_root_at_all_is_refused() {
        let roots = TlsRoots {
            native: false,
            pem: Vec::new(),
        };
        let error = roots.client_config().unwrap_err();
        assert!(error.to_string().contains("no trusted root"), "{error}");
    }

    #[test]
    fn a_garbled_certificate_is_refused() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
        let roots = TlsRoots {
            native: false,
            pem: vec![pem],
        };
        assert!(roots.client_config().is_err());
    }
}
