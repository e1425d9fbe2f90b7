//! The bus's configuration: broker URL, exchange, timeouts.

use std::fmt;
use std::time::Duration;

use realtime_core::driver::redact_url;
use realtime_core::{Error, Result};

/// The local RabbitMQ of a development machine (guest/guest, default virtual host).
pub const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// TLS settings for an `amqps://` URL (the server certificate is always verified and must
/// name the URL's host).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AmqpTls {
    /// CA certificates (PEM) to trust besides the system's roots (a private CA).
    /// Default `None`: the system's roots only.
    pub root_certificate_pem: Option<String>,
    /// The client's certificate (PEM), for brokers that verify clients and for the
    /// `EXTERNAL` mechanism (`?auth_mechanism=external` in the URL: the broker takes the
    /// user from the certificate), with [`client_key_pem`](Self::client_key_pem).
    /// Default `None`.
    pub client_certificate_pem: Option<Vec<u8>>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1); never printed.
    /// Default `None`.
    pub client_key_pem: Option<Vec<u8>>,
}

impl AmqpTls {
    /// Each PEM given holds what it should (checked here: lapin would only say so at
    /// connect, as a connection error retried for ever).
    fn validate(&self) -> Result<()> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certificates = |pem: &[u8]| {
            let found: std::result::Result<Vec<_>, _> =
                CertificateDer::pem_slice_iter(pem).collect();
            found.is_ok_and(|found| !found.is_empty())
        };
        let invalid = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        if let Some(pem) = &self.root_certificate_pem
            && !certificates(pem.as_bytes())
        {
            return invalid("tls.root_certificate_pem", "holds no PEM certificate");
        }
        if let Some(pem) = &self.client_certificate_pem
            && !certificates(pem)
        {
            return invalid("tls.client_certificate_pem", "holds no PEM certificate");
        }
        // Never the key's bytes in the error: only that it could not be read.
        if let Some(pem) = &self.client_key_pem
            && PrivateKeyDer::from_pem_slice(pem).is_err()
        {
            return invalid("tls.client_key_pem", "holds no PEM private key");
        }
        Ok(())
    }
}

impl fmt::Debug for AmqpTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpTls")
            .field(
                "root_certificate_pem",
                &self.root_certificate_pem.as_ref().map(|pem| pem.len()),
            )
            .field(
                "client_certificate_pem",
                &self.client_certificate_pem.as_ref().map(Vec::len),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// How [`AmqpBus`](crate::AmqpBus) reaches the broker.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AmqpBusConfig {
    /// `amqp://user:password@host:port/vhost` (the virtual host URL-encoded: `%2f` is `/`),
    /// or `amqps://…` for TLS (port 5671 by default; see [`tls`](Self::tls)). The password
    /// is hidden when printed. Default [`DEFAULT_URL`].
    pub url: String,
    /// TLS settings for an `amqps://` URL; refused with `amqp://`. Default: the system's
    /// roots, no client certificate.
    pub tls: AmqpTls,
    /// The direct exchange every instance of a deployment publishes to and binds its queue
    /// to (declared durable if missing; an existing exchange of another type is refused by
    /// the broker). 1 to 200 bytes, not starting with `amq.`. Default `realtime`.
    pub exchange: String,
    /// Whether the exchange is declared durable (it survives a broker restart; the bus
    /// declares it again on every reconnect either way). Default `true`; tests that make
    /// an exchange each turn it off, so the broker forgets them when it restarts.
    pub durable_exchange: bool,
    /// Bound on connecting, at start and on each reconnect attempt. Default 5 s.
    pub connect_timeout: Duration,
    /// Bound on a publish (until the broker confirms it), a bind and an unbind. Default 5 s.
    pub operation_timeout: Duration,
    /// The heartbeat asked of the broker: a connection that goes silent (a broker host
    /// gone without closing its sockets) is noticed within about twice this. Whole
    /// seconds, 1 s to 60 s. Default 10 s.
    pub heartbeat: Duration,
    /// The longest wait between reconnect attempts (they back off from 100 ms). Default 2 s.
    pub reconnect_delay_max: Duration,
    /// How often the bus sends itself a probe through the exchange: a probe that does not
    /// come back within twice this plus `operation_timeout` (the exchange, the queue or its
    /// bindings deleted by hand, a consumer the broker cancelled) counts as a lost
    /// connection. At least 100 ms. Default 2 s.
    pub probe_interval: Duration,
    /// Messages queued per local subscription before it counts as interrupted. Default 1,024.
    pub subscription_capacity: usize,
}

impl Default for AmqpBusConfig {
    fn default() -> Self {
        AmqpBusConfig {
            url: DEFAULT_URL.into(),
            tls: AmqpTls::default(),
            exchange: "realtime".into(),
            durable_exchange: true,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
            reconnect_delay_max: Duration::from_secs(2),
            probe_interval: Duration::from_secs(2),
            subscription_capacity: 1024,
        }
    }
}

impl AmqpBusConfig {
    /// A configuration for the broker at `url`, the rest default.
    pub fn new(url: impl Into<String>) -> Self {
        AmqpBusConfig {
            url: url.into(),
            ..AmqpBusConfig::default()
        }
    }

    /// Checks every field; the error names the first that is wrong.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.into(),
            })
        };
        let Ok(uri) = self.url.parse::<lapin::uri::AMQPUri>() else {
            return invalid("url", "not an amqp:// or amqps:// URL");
        };
        let tls = uri.scheme == lapin::uri::AMQPScheme::AMQPS;
        if !tls && self.tls != AmqpTls::default() {
            return invalid("tls", "TLS settings need an amqps:// URL");
        }
        realtime_core::driver::certificate_with_key(
            self.tls.client_certificate_pem.is_some(),
            self.tls.client_key_pem.is_some(),
            "tls.client_certificate_pem",
            "tls.client_key_pem",
        )?;
        self.tls.validate()?;
        if uri.query.auth_mechanism == Some(lapin::uri::SASLMechanism::External)
            && self.tls.client_certificate_pem.is_none()
        {
            return invalid(
                "tls.client_certificate_pem",
                "auth_mechanism=external takes the user from a client certificate",
            );
        }
        if self.exchange.is_empty() || self.exchange.len() > 200 {
            return invalid("exchange", "1 to 200 bytes");
        }
        if self.exchange.starts_with("amq.") {
            return invalid("exchange", "names starting with amq. are the broker's");
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("operation_timeout", self.operation_timeout),
            ("reconnect_delay_max", self.reconnect_delay_max),
        ] {
            if value < Duration::from_millis(10) {
                return invalid(field, "must be at least 10 ms");
            }
        }
        if self.probe_interval < Duration::from_millis(100) {
            return invalid("probe_interval", "must be at least 100 ms");
        }
        if self.heartbeat < Duration::from_secs(1) || self.heartbeat > Duration::from_secs(60) {
            return invalid("heartbeat", "1 s to 60 s");
        }
        if self.subscription_capacity == 0 {
            return invalid("subscription_capacity", "must be at least 1");
        }
        Ok(())
    }
}

/// The host of `url` as written: a name, an IPv4 address, or an IPv6 address without its
/// brackets.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    Some(match parsed.host()? {
        url::Host::Domain(name) => name.to_owned(),
        url::Host::Ipv4(address) => address.to_string(),
        url::Host::Ipv6(address) => address.to_string(),
    })
}

impl fmt::Debug for AmqpBusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBusConfig")
            .field("url", &redact_url(&self.url))
            .field("tls", &self.tls)
            .field("exchange", &self.exchange)
            .field("durable_exchange", &self.durable_exchange)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("heartbeat", &self.heartbeat)
            .field("reconnect_delay_max", &self.reconnect_delay_max)
            .field("probe_interval", &self.probe_interval)
            .field("subscription_capacity", &self.subscription_capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_the_urls_even_an_ip_address() {
        assert_eq!(
            host_of("amqps://u:p@10.0.0.5:5671/%2f").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(host_of("amqp://[::1]:5672/%2f").as_deref(), Some("::1"));
        assert_eq!(
            host_of("amqp://mq.example:5672").as_deref(),
            Some("mq.example")
        );
    }

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        AmqpBusConfig::default().validate().unwrap();
        for (config, field) in [
            (
                AmqpBusConfig {
                    exchange: "amq.direct".into(),
                    ..AmqpBusConfig::default()
                },
                "exchange",
            ),
            (
                AmqpBusConfig {
                    url: "http://x".into(),
                    ..AmqpBusConfig::default()
                },
                "url",
            ),
            (
                AmqpBusConfig {
                    heartbeat: Duration::ZERO,
                    ..AmqpBusConfig::default()
                },
                "heartbeat",
            ),
        ] {
            match config.validate() {
                Err(Error::InvalidConfig { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let config = AmqpBusConfig::new("amqp://app:s3cret@mq:5672/%2f");
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("amqp://app:***@mq:5672/%2f"), "{printed}");
    }
}
