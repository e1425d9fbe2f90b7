//! What every client of the bus shares with librdkafka: the last error it reported (a
//! connect error names the certificate or authentication problem, not just "unreachable")
//! and the application's `OAUTHBEARER` tokens.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken as RdOAuthToken;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaBusConfig;
use crate::oauth::OAuthTokenProvider;

/// Longest broker error kept for a connect error.
const MAX_REASON: usize = 1024;

/// Shared by every client of one bus (cloning shares it).
#[derive(Clone)]
pub(crate) struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    token: Option<Arc<dyn OAuthTokenProvider>>,
    last_error: Mutex<Option<BrokerError>>,
}

/// What librdkafka last reported.
#[derive(Debug, Clone)]
pub(crate) struct BrokerError {
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) reason: String,
}

impl BrokerError {
    /// The brokers refused the credentials (or the token): retrying will not help.
    pub(crate) fn is_authentication(&self) -> bool {
        self.code == Some(RDKafkaErrorCode::Authentication)
            || self.reason.contains("SASL authentication error")
    }
}

impl Hooks {
    pub(crate) fn new(config: &KafkaBusConfig) -> Self {
        Hooks {
            inner: Arc::new(Inner {
                token: config.sasl.as_ref().and_then(|sasl| sasl.token_provider()),
                last_error: Mutex::new(None),
            }),
        }
    }

    /// What librdkafka last reported, if anything.
    pub(crate) fn last_error(&self) -> Option<BrokerError> {
        self.inner.last_error.lock().clone()
    }

    /// Keeps `reason` (cut to [`MAX_REASON`] bytes) for the next connect error.
    pub(crate) fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let mut last = self.inner.last_error.lock();
        // "All brokers are down" follows the reason they are: keep the reason.
        if code == Some(RDKafkaErrorCode::AllBrokersDown) && last.is_some() {
            return;
        }
        let mut end = reason.len().min(MAX_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        *last = Some(BrokerError {
            code,
            reason: reason[..end].to_owned(),
        });
    }

    pub(crate) fn token(&self) -> Result<RdOAuthToken, Box<dyn std::error::Error>> {
        let Some(provider) = &self.inner.token else {
            return Err("no OAUTHBEARER token provider is configured".into());
        };
        match provider.token() {
            Ok(token) => {
                let lifetime = token
                    .expires_at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO);
                Ok(RdOAuthToken {
                    token: token.value,
                    principal_name: token.principal,
                    lifetime_ms: i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX),
                })
            }
            Err(error) => {
                // The provider's words, never a token: it returned none.
                tracing::warn!(%error, "kafka OAUTHBEARER token provider failed; librdkafka asks again");
                Err(error.to_string().into())
            }
        }
    }
}

impl ClientContext for Hooks {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        self.record(&error, reason);
        tracing::debug!(%error, reason, "kafka client error");
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<RdOAuthToken, Box<dyn std::error::Error>> {
        self.token()
    }
}
