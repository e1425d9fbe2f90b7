//! The bus's configuration: server, credentials, subject prefix and timeouts.

use std::fmt;
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
        }
    }
}

/// How [`NatsBus`](crate::NatsBus) reaches NATS.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsBusConfig {
    /// The server (`nats://host:port`; a comma-separated list for a cluster). User and
    /// password in the URL work, and are hidden when printed. Default
    /// `nats://127.0.0.1:4222`.
    pub url: String,
    /// How the bus authenticates (user and password, or a token), beside any
    /// user and password in the URL. Default [`NatsCredentials::None`].
    pub credentials: NatsCredentials,
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
        Ok(())
    }
}

impl fmt::Debug for NatsBusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBusConfig")
            .field("url", &realtime_core::driver::redact_url(&self.url))
            .field("credentials", &self.credentials)
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
