//! TLS and SASL: what the config says, and the `security.*`, `ssl.*` and `sasl.*` settings
//! it gives librdkafka (built with OpenSSL: TLS, PLAIN, SCRAM and OAUTHBEARER; no GSSAPI).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rdkafka::ClientConfig;
use realtime_core::{Error, Result};

use crate::oauth::{Hidden, OAuthTokenProvider};

/// A PEM document: the text itself, or a file librdkafka reads when each client is built
/// (at connect and after every outage, so a renewed file is picked up then).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pem {
    /// The PEM text (`-----BEGIN …`).
    Text(String),
    /// A file holding it.
    File(PathBuf),
}

impl fmt::Debug for Pem {
    /// A path is shown, a text only by its length (it may be a private key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::Text(text) => write!(f, "Text(<{} bytes>)", text.len()),
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl Pem {
    fn validate(&self, field: &'static str) -> Result<()> {
        let reason = match self {
            Pem::Text(text) if !text.contains("-----BEGIN ") => "is not PEM (no `-----BEGIN`)",
            Pem::File(path) if !path.is_file() => "names no readable file",
            _ => return Ok(()),
        };
        Err(Error::InvalidConfig {
            field,
            reason: reason.into(),
        })
    }

    /// Sets `<prefix>.pem` or `<prefix>.location`.
    fn apply(&self, client: &mut ClientConfig, prefix: &str) {
        match self {
            Pem::Text(text) => client.set(format!("{prefix}.pem"), text),
            Pem::File(path) => client.set(
                format!("{prefix}.location"),
                path.to_string_lossy().into_owned(),
            ),
        };
    }
}

/// TLS to the brokers (`security.protocol` `SSL`, or `SASL_SSL` with [`Sasl`]). The broker's
/// certificate must chain to a trusted root and name the host connected to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaTls {
    /// CA certificates to trust instead of the system's roots (a private CA, a test
    /// cluster). Default `None`: the system's roots (`/etc/ssl/certs`).
    pub ca: Option<Pem>,
    /// The client's certificate, for brokers that require mutual TLS (with
    /// [`client_key`](Self::client_key)). Default `None`.
    pub client_certificate: Option<Pem>,
    /// The client certificate's private key (unencrypted PEM); never printed. Default `None`.
    pub client_key: Option<Pem>,
}

impl KafkaTls {
    /// TLS trusting only the CA certificates in `pem` (a private CA).
    pub fn with_ca(pem: Pem) -> Self {
        KafkaTls {
            ca: Some(pem),
            ..KafkaTls::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        realtime_core::driver::certificate_with_key(
            self.client_certificate.is_some(),
            self.client_key.is_some(),
            "tls.client_certificate",
            "tls.client_key",
        )?;
        for (field, pem) in [
            ("tls.ca", &self.ca),
            ("tls.client_certificate", &self.client_certificate),
            ("tls.client_key", &self.client_key),
        ] {
            if let Some(pem) = pem {
                pem.validate(field)?;
            }
        }
        Ok(())
    }

    fn apply(&self, client: &mut ClientConfig) {
        // librdkafka's default since 2.0; said here so no older default can turn it off.
        client.set("ssl.endpoint.identification.algorithm", "https");
        if let Some(ca) = &self.ca {
            ca.apply(client, "ssl.ca");
        }
        if let Some(certificate) = &self.client_certificate {
            certificate.apply(client, "ssl.certificate");
        }
        if let Some(key) = &self.client_key {
            key.apply(client, "ssl.key");
        }
    }
}

/// SASL authentication (`security.protocol` `SASL_PLAINTEXT`, or `SASL_SSL` with
/// [`KafkaTls`]). Passwords and tokens are never printed.
#[derive(Clone)]
#[non_exhaustive]
pub enum Sasl {
    /// `PLAIN`: the password crosses the connection as is; use it with TLS.
    Plain {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `SCRAM-SHA-256`.
    ScramSha256 {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `SCRAM-SHA-512` (Amazon MSK's SCRAM).
    ScramSha512 {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// `OAUTHBEARER` with tokens from the application.
    OAuthBearer(Arc<dyn OAuthTokenProvider>),
}

impl Sasl {
    /// `PLAIN` with these credentials.
    pub fn plain(username: impl Into<String>, password: impl Into<String>) -> Self {
        Sasl::Plain {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `SCRAM-SHA-256` with these credentials.
    pub fn scram_sha_256(username: impl Into<String>, password: impl Into<String>) -> Self {
        Sasl::ScramSha256 {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `SCRAM-SHA-512` with these credentials.
    pub fn scram_sha_512(username: impl Into<String>, password: impl Into<String>) -> Self {
        Sasl::ScramSha512 {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `OAUTHBEARER` with tokens from `provider`.
    pub fn oauth_bearer(provider: impl OAuthTokenProvider) -> Self {
        Sasl::OAuthBearer(Arc::new(provider))
    }

    /// The mechanism's name as Kafka knows it (`PLAIN`, `SCRAM-SHA-256`…).
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::ScramSha256 { .. } => "SCRAM-SHA-256",
            Sasl::ScramSha512 { .. } => "SCRAM-SHA-512",
            Sasl::OAuthBearer(_) => "OAUTHBEARER",
        }
    }

    /// The user name, for the mechanisms that have one.
    pub fn username(&self) -> Option<&str> {
        self.credentials().map(|(username, _)| username)
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            Sasl::Plain { username, password }
            | Sasl::ScramSha256 { username, password }
            | Sasl::ScramSha512 { username, password } => Some((username, password)),
            Sasl::OAuthBearer(_) => None,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self
            .credentials()
            .is_some_and(|(username, _)| username.is_empty())
        {
            return Err(Error::InvalidConfig {
                field: "sasl",
                reason: "the user name must not be empty".into(),
            });
        }
        Ok(())
    }

    /// The token provider, for `OAUTHBEARER`.
    pub(crate) fn token_provider(&self) -> Option<Arc<dyn OAuthTokenProvider>> {
        match self {
            Sasl::OAuthBearer(provider) => Some(provider.clone()),
            _ => None,
        }
    }

    fn apply(&self, client: &mut ClientConfig) {
        client.set("sasl.mechanisms", self.mechanism());
        if let Some((username, password)) = self.credentials() {
            client
                .set("sasl.username", username)
                .set("sasl.password", password);
        }
    }
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.username() {
            Some(username) => f
                .debug_struct(self.mechanism())
                .field("username", &username)
                .field("password", &Hidden)
                .finish(),
            None => f.write_str("OAUTHBEARER(<token provider>)"),
        }
    }
}

/// Sets `security.protocol` and the TLS and SASL settings of `tls` and `sasl`.
pub(crate) fn apply(
    client: &mut ClientConfig,
    protocol: &str,
    tls: Option<&KafkaTls>,
    sasl: Option<&Sasl>,
) {
    client.set("security.protocol", protocol);
    if let Some(tls) = tls {
        tls.apply(client);
    }
    if let Some(sasl) = sasl {
        sasl.apply(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_without_its_certificate_and_bad_pem_are_named() {
        let field = |tls: KafkaTls| match tls.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut tls = KafkaTls {
            client_key: Some(Pem::Text("-----BEGIN PRIVATE KEY-----".into())),
            ..KafkaTls::default()
        };
        assert_eq!(field(tls.clone()), "tls.client_certificate");
        tls.client_key = None;
        tls.client_certificate = Some(Pem::Text("-----BEGIN CERTIFICATE-----".into()));
        assert_eq!(field(tls.clone()), "tls.client_key");
        assert_eq!(
            field(KafkaTls::with_ca(Pem::Text("not pem".into()))),
            "tls.ca"
        );
        assert_eq!(
            field(KafkaTls::with_ca(Pem::File("/nonexistent/ca.pem".into()))),
            "tls.ca"
        );
        let empty = Sasl::scram_sha_512("", "pw");
        assert!(matches!(
            empty.validate(),
            Err(Error::InvalidConfig { field: "sasl", .. })
        ));
    }

    #[test]
    fn settings_reach_librdkafka() {
        let mut client = ClientConfig::new();
        let mut tls = KafkaTls::with_ca(Pem::Text("-----BEGIN CERTIFICATE-----x".into()));
        tls.client_certificate = Some(Pem::File("/etc/c.pem".into()));
        tls.client_key = Some(Pem::File("/etc/k.pem".into()));
        let sasl = Sasl::scram_sha_256("app", "pw");
        apply(&mut client, "SASL_SSL", Some(&tls), Some(&sasl));
        for (key, value) in [
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----x"),
            ("ssl.certificate.location", "/etc/c.pem"),
            ("ssl.key.location", "/etc/k.pem"),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
            ("sasl.username", "app"),
            ("sasl.password", "pw"),
        ] {
            assert_eq!(client.get(key), Some(value), "{key}");
        }
        // librdkafka itself builds a client with each mechanism over TLS (this build has
        // OpenSSL; without it SCRAM and SSL are refused here).
        for sasl in [
            Sasl::plain("app", "pw"),
            Sasl::scram_sha_256("app", "pw"),
            Sasl::scram_sha_512("app", "pw"),
        ] {
            let mut client = ClientConfig::new();
            client.set("bootstrap.servers", "127.0.0.1:1");
            apply(
                &mut client,
                "SASL_SSL",
                Some(&KafkaTls::default()),
                Some(&sasl),
            );
            let built: rdkafka::error::KafkaResult<rdkafka::producer::BaseProducer> =
                client.create();
            if let Err(error) = built {
                panic!("{}: {error}", sasl.mechanism());
            }
        }
    }
}
