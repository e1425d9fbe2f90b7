//! SASL `OAUTHBEARER` tokens: what the application's provider returns, and the trait it
//! implements.

use std::fmt;
use std::time::SystemTime;

/// Shows a secret's presence, never its value.
pub(crate) struct Hidden;

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// How an [`OAuthTokenProvider`] says it has no token.
pub type TokenError = Box<dyn std::error::Error + Send + Sync>;

/// A bearer token for SASL `OAUTHBEARER`.
#[derive(Clone)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The token (a JWT, an MSK IAM signed URL…); never printed.
    pub value: String,
    /// The Kafka principal it stands for.
    pub principal: String,
    /// When it expires; librdkafka asks for the next at 80 % of its lifetime.
    pub expires_at: SystemTime,
}

impl OAuthToken {
    /// A token for `principal`, valid until `expires_at`.
    pub fn new(
        value: impl Into<String>,
        principal: impl Into<String>,
        expires_at: SystemTime,
    ) -> Self {
        OAuthToken {
            value: value.into(),
            principal: principal.into(),
            expires_at,
        }
    }
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &Hidden)
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where SASL `OAUTHBEARER` tokens come from: Amazon MSK IAM, Confluent Cloud OAuth, Azure
/// Event Hubs and any OIDC issuer hand out tokens this way.
pub trait OAuthTokenProvider: Send + Sync + 'static {
    /// A token valid now.
    ///
    /// # Behavior
    /// Called on a thread of the bus's own, never a runtime's: at connect, then at 80 % of
    /// each token's lifetime, so it may block (sign a request, ask an identity provider).
    /// librdkafka's clients are handed the latest token; the first connect waits up to
    /// 10 s for it. An error (or a panic) is logged without any token and the call is
    /// made again 5 s later; meanwhile connections that need a new token fail and the bus
    /// reports an outage, retryable. A token must be visible ASCII (RFC 6750) and the
    /// principal free of whitespace, else it is refused the same way.
    fn token(&self) -> std::result::Result<OAuthToken, TokenError>;
}
