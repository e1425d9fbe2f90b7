//! What every client of the bus shares with librdkafka: the last error it reported (a
//! connect error names the certificate or authentication problem, not just "unreachable")
//! and the application's `OAUTHBEARER` tokens.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken as RdOAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::config::KafkaBusConfig;
use crate::tokens::TokenCache;

/// Longest broker error kept for a connect error.
const MAX_REASON: usize = 1024;

/// Shared by every client of one bus (cloning shares it).
#[derive(Clone)]
pub(crate) struct Hooks {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: Option<TokenCache>,
    last_error: Mutex<Option<BrokerError>>,
}

/// What librdkafka last reported.
#[derive(Debug, Clone)]
pub(crate) struct BrokerError {
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) reason: String,
}

impl BrokerError {
    /// The brokers refused the credentials (or the token): retrying will not help. A token
    /// the client could not get is not that: the provider may answer next time.
    pub(crate) fn is_authentication(&self) -> bool {
        (self.code == Some(RDKafkaErrorCode::Authentication)
            || self.reason.contains("SASL authentication error"))
            && !self
                .reason
                .contains("Failed to acquire SASL OAUTHBEARER token")
    }
}

impl Hooks {
    pub(crate) fn new(config: &KafkaBusConfig) -> Self {
        Hooks {
            inner: Arc::new(Inner {
                tokens: config
                    .sasl
                    .as_ref()
                    .and_then(|sasl| sasl.token_provider())
                    .map(TokenCache::start),
                last_error: Mutex::new(None),
            }),
        }
    }

    /// What librdkafka last reported, if anything.
    pub(crate) fn last_error(&self) -> Option<BrokerError> {
        self.inner.last_error.lock().clone()
    }

    /// Forgets what was reported so far (a new attempt starts).
    pub(crate) fn forget(&self) {
        *self.inner.last_error.lock() = None;
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

    /// The current `OAUTHBEARER` token, fetched ahead on the token thread (never by the
    /// provider on this thread, which polls a client).
    pub(crate) fn token(&self) -> Result<RdOAuthToken, Box<dyn std::error::Error>> {
        let Some(tokens) = &self.inner.tokens else {
            return Err("no OAUTHBEARER token provider is configured".into());
        };
        let token = tokens.current()?;
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
}

/// librdkafka's log lines, into `tracing` (target `librdkafka`) as the rest of the bus's.
pub(crate) fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    use RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error => {
            tracing::error!(target: "librdkafka", facility, message);
        }
        L::Warning => tracing::warn!(target: "librdkafka", facility, message),
        L::Notice | L::Info => tracing::info!(target: "librdkafka", facility, message),
        L::Debug => tracing::debug!(target: "librdkafka", facility, message),
    }
}

impl ClientContext for Hooks {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        self.record(&error, reason);
        tracing::debug!(%error, reason, "kafka client error");
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log(level, facility, message);
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<RdOAuthToken, Box<dyn std::error::Error>> {
        self.token()
    }
}
