//! How the bus proves who it is and whom it talks to: credentials (from the config, or the
//! URL's `user:password@` / `token@`, which async-nats itself ignores) and TLS settings,
//! onto async-nats's `ConnectOptions`.

use std::sync::Arc;

use async_nats::ConnectOptions;
use async_nats::rustls;
use realtime_core::{BackendError, BackendErrorKind, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{NatsBusConfig, NatsCredentials, NatsTls};

/// `options` with the credentials and TLS settings of `config`.
pub(crate) async fn apply(
    config: &NatsBusConfig,
    options: ConnectOptions,
) -> Result<ConnectOptions> {
    let credentials = match &config.credentials {
        NatsCredentials::None => from_url(&config.url),
        other => other.clone(),
    };
    let mut options = match credentials {
        NatsCredentials::None => options,
        NatsCredentials::UserPassword { user, password } => {
            options.user_and_password(user, password)
        }
        NatsCredentials::Token(token) => options.token(token),
        NatsCredentials::NKey(seed) => options.nkey(seed),
        NatsCredentials::Creds(creds) => options
            .credentials(&creds)
            .map_err(|e| invalid(format!("the .creds contents are not valid: {e}")))?,
        NatsCredentials::CredsFile(path) => options.credentials_file(&path).await.map_err(|e| {
            invalid(format!(
                "the .creds file {} cannot be used: {e}",
                path.display()
            ))
        })?,
    };
    if let Some(tls) = &config.tls {
        options = options
            .require_tls(true)
            .tls_client_config(client_config(tls)?);
    }
    Ok(options)
}

fn invalid(message: String) -> realtime_core::Error {
    BackendError::new("nats", BackendErrorKind::Config, message).into()
}

/// A rustls client configuration on aws-lc-rs: the given CA or the system's roots, and the
/// client certificate if any.
fn client_config(tls: &NatsTls) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.root_certificate_pem {
        Some(pem) => {
            for certificate in CertificateDer::pem_slice_iter(pem) {
                let certificate = certificate
                    .map_err(|e| invalid(format!("tls.root_certificate_pem is not PEM: {e}")))?;
                roots
                    .add(certificate)
                    .map_err(|e| invalid(format!("tls.root_certificate_pem: {e}")))?;
            }
            if roots.is_empty() {
                return Err(invalid(
                    "tls.root_certificate_pem holds no certificate".into(),
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(invalid(
                    "no system root certificate could be read (install ca-certificates, or set \
                     tls.root_certificate_pem)"
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    match (&tls.client_certificate_pem, &tls.client_key_pem) {
        (Some(certificate), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(certificate)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("tls.client_certificate_pem is not PEM: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                // Never the key's bytes: only that it could not be read.
                .map_err(|_| invalid("tls.client_key_pem holds no private key".into()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(format!("the client certificate and key: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `urls` (comma-separated) without their user parts.
pub(crate) fn without_credentials(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            if scheme.is_empty() {
                format!("{host}{tail}")
            } else {
                format!("{scheme}://{host}{tail}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The credentials in the first server URL's user part: `user:password@` or `token@`.
fn from_url(url: &str) -> NatsCredentials {
    let first = url.split(',').next().unwrap_or_default().trim();
    let rest = first.split_once("://").map_or(first, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return NatsCredentials::None;
    };
    match userinfo.split_once(':') {
        Some((user, password)) => NatsCredentials::UserPassword {
            user: percent_decoded(user),
            password: percent_decoded(password),
        },
        None if !userinfo.is_empty() => NatsCredentials::Token(percent_decoded(userinfo)),
        None => NatsCredentials::None,
    }
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_url_are_used() {
        assert_eq!(
            from_url("nats://al%40ice:p%3Ass@h:4222,nats://other:x@h2"),
            NatsCredentials::UserPassword {
                user: "al@ice".into(),
                password: "p:ss".into()
            }
        );
        assert_eq!(
            from_url("tls://t0ken@h:4222"),
            NatsCredentials::Token("t0ken".into())
        );
        assert_eq!(from_url("nats://h:4222"), NatsCredentials::None);
        assert_eq!(
            without_credentials("nats://a:p%40ss@h:4222, tls://t0k@[::1]:4222/x,h3:4222"),
            "nats://h:4222,tls://[::1]:4222/x,h3:4222"
        );
        assert_eq!(from_url("h:4222"), NatsCredentials::None);
    }

    #[test]
    fn bad_pem_is_a_configuration_error_that_never_shows_the_key() {
        let tls = NatsTls {
            client_certificate_pem: Some(
                b"-----BEGIN CERTIFICATE-----\nbm90\n-----END CERTIFICATE-----\n".to_vec(),
            ),
            client_key_pem: Some(b"s3cret-key".to_vec()),
            ..NatsTls::with_root_certificate(b"not pem".to_vec())
        };
        let error = client_config(&tls)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("root_certificate_pem"), "{error}");
        let tls = NatsTls {
            root_certificate_pem: None,
            ..tls
        };
        let error = client_config(&tls)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("client_key_pem") && !error.contains("s3cret"),
            "{error}"
        );
    }
}
