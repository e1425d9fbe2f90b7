//! The bus's configuration: server, credentials, subject prefix and timeouts.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use realtime_core::{Error, Result};

/// How the bus authenticates to the server.
#[derive(Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NatsCredentials {
    /// None beyond what the URL carries. The default.
    #[default]
    None,
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// The password; never printed.
        password: String,
    },
    /// A token; never printed.
    Token(String),
    /// An NKey user's seed (`SU…`); never printed. The public key is derived from it.
    NKey(String),
    /// A `.creds` file's contents: the user JWT and its NKey seed, as Synadia Cloud and
    /// `nsc` hand them out (operator mode); never printed.
    Creds(String),
    /// The path of a `.creds` file, read at connect.
    CredsFile(PathBuf),
}

impl fmt::Debug for NatsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsCredentials::None => f.write_str("None"),
            NatsCredentials::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<hidden>")
                .finish(),
            NatsCredentials::Token(_) => f.write_str("Token(<hidden>)"),
            NatsCredentials::NKey(_) => f.write_str("NKey(<hidden>)"),
            NatsCredentials::Creds(_) => f.write_str("Creds(<hidden>)"),
            NatsCredentials::CredsFile(path) => f.debug_tuple("CredsFile").field(path).finish(),
        }
    }
}

/// TLS to the server (`tls://` URLs, or servers that require it).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsTls {
    /// CA certificates (PEM) to trust instead of the system's roots. Default `None`.
    pub root_certificate_pem: Option<Vec<u8>>,
    /// The client's certificate chain (PEM), for servers that verify clients (`verify:
    /// true`), with [`client_key_pem`](Self::client_key_pem). Default `None`.
    pub client_certificate_pem: Option<Vec<u8>>,
    /// The client certificate's private key (PEM); never printed. Default `None`.
    pub client_key_pem: Option<Vec<u8>>,
}

impl NatsTls {
    /// TLS trusting only the CA certificates in `pem`.
    pub fn with_root_certificate(pem: impl Into<Vec<u8>>) -> Self {
        NatsTls {
            root_certificate_pem: Some(pem.into()),
            ..NatsTls::default()
        }
    }
}

impl fmt::Debug for NatsTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = |pem: &Option<Vec<u8>>| pem.as_ref().map(|pem| format!("<{} bytes>", pem.len()));
        f.debug_struct("NatsTls")
            .field("root_certificate_pem", &size(&self.root_certificate_pem))
            .field(
                "client_certificate_pem",
                &size(&self.client_certificate_pem),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// How [`NatsBus`](crate::NatsBus) reaches NATS.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsBusConfig {
    /// The server (`nats://host:port`, `tls://host:port` to require TLS; a comma-separated
    /// list for a cluster). `user:password@` or `token@` in the first URL is used when
    /// [`credentials`](Self::credentials) is `None`, and hidden when printed. Default
    /// `nats://127.0.0.1:4222`.
    pub url: String,
    /// How the bus authenticates (user and password, token, NKey, creds). Default
    /// [`NatsCredentials::None`].
    pub credentials: NatsCredentials,
    /// TLS settings; `Some` requires TLS whatever the URL's scheme. Default `None`: TLS
    /// only for `tls://` URLs or a server that requires it, trusting the system's roots.
    pub tls: Option<NatsTls>,
    /// Every channel's subject starts with it: tokens ending with `.`, no wildcards or
    /// whitespace. Default `realtime.`.
    pub subject_prefix: String,
    /// Bound on connecting, at start and on each reconnect attempt. Default 5 s.
    pub connect_timeout: Duration,
    /// Bound on a publish or subscribe, flush included. Default 5 s.
    pub operation_timeout: Duration,
    /// The longest wait between reconnect attempts (they back off from 50 ms). Default 2 s.
    pub reconnect_delay_max: Duration,
    /// Messages queued per local subscription before it counts as interrupted. Default 1,024.
    pub subscription_capacity: usize,
}

impl Default for NatsBusConfig {
    fn default() -> Self {
        NatsBusConfig {
            url: "nats://127.0.0.1:4222".into(),
            credentials: NatsCredentials::None,
            tls: None,
            subject_prefix: "realtime.".into(),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(5),
            reconnect_delay_max: Duration::from_secs(2),
            subscription_capacity: 1024,
        }
    }
}

impl NatsBusConfig {
    /// A configuration for the server at `url`, the rest default.
    pub fn new(url: impl Into<String>) -> Self {
        NatsBusConfig {
            url: url.into(),
            ..NatsBusConfig::default()
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
        if self.url.trim().is_empty() {
            return invalid("url", "must not be empty");
        }
        if !crate::subject::valid_prefix(&self.subject_prefix) {
            return invalid(
                "subject_prefix",
                "tokens ending with '.', up to 128 bytes, without wildcards or whitespace",
            );
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
        if self.subscription_capacity == 0 {
            return invalid("subscription_capacity", "must be at least 1");
        }
        if let Some(tls) = &self.tls {
            realtime_core::driver::certificate_with_key(
                tls.client_certificate_pem.is_some(),
                tls.client_key_pem.is_some(),
                "tls.client_certificate_pem",
                "tls.client_key_pem",
            )?;
        }
        match &self.credentials {
            NatsCredentials::NKey(seed) if !seed.starts_with("SU") => {
                return invalid("credentials", "an NKey user seed starts with `SU`");
            }
            NatsCredentials::Creds(creds) if !creds.contains("-----BEGIN NATS USER JWT-----") => {
                return invalid(
                    "credentials",
                    "a .creds file holds `-----BEGIN NATS USER JWT-----`",
                );
            }
            NatsCredentials::CredsFile(path) if !path.is_file() => {
                return invalid("credentials", "the .creds file names no readable file");
            }
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Debug for NatsBusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBusConfig")
            .field("url", &realtime_core::driver::redact_url(&self.url))
            .field("credentials", &self.credentials)
            .field("tls", &self.tls)
            .field("subject_prefix", &self.subject_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("reconnect_delay_max", &self.reconnect_delay_max)
            .field("subscription_capacity", &self.subscription_capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        NatsBusConfig::default().validate().unwrap();
        let config = NatsBusConfig {
            subject_prefix: "realtime".into(),
            ..NatsBusConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "subject_prefix",
                ..
            })
        ));
        let config = NatsBusConfig {
            operation_timeout: Duration::ZERO,
            ..NatsBusConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidConfig {
                field: "operation_timeout",
                ..
            })
        ));
    }

    #[test]
    fn debug_hides_passwords_and_tokens() {
        let config = NatsBusConfig {
            url: "nats://alice:s3cret@h1:4222,nats://tok3n@h2:4222".into(),
            credentials: NatsCredentials::UserPassword {
                user: "bob".into(),
                password: "pa55".into(),
            },
            ..NatsBusConfig::default()
        };
        let printed = format!("{config:?}");
        for secret in ["s3cret", "tok3n", "pa55"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("alice") && printed.contains("bob"),
            "{printed}"
        );
        let token = format!("{:?}", NatsCredentials::Token("t0k".into()));
        assert!(!token.contains("t0k"), "{token}");
    }
}
