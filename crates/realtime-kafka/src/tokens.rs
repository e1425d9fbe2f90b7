//! `OAUTHBEARER` tokens fetched ahead, on a thread of their own: librdkafka asks for a token
//! on whichever thread polls the client (for the consumer, a runtime worker), so the
//! application's provider never runs there — it may sign requests or wait on the network,
//! and a panic in it ends nothing but one attempt.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Condvar, Mutex};

use crate::oauth::{OAuthToken, OAuthTokenProvider};

/// How long librdkafka's request may wait for the first token.
const FIRST_TOKEN_WAIT: Duration = Duration::from_secs(10);
/// How soon a failed fetch is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The current token, kept fresh by a background thread until dropped.
pub(crate) struct TokenCache {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    token: Option<OAuthToken>,
    /// Why the last fetch failed (the provider's words, or what was wrong with its token).
    failure: Option<String>,
    stopped: bool,
}

impl TokenCache {
    /// Starts fetching from `provider` at once.
    pub(crate) fn start(provider: Arc<dyn OAuthTokenProvider>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let refresher = shared.clone();
        let started = std::thread::Builder::new()
            .name("realtime-kafka-token".into())
            .spawn(move || refresh(&refresher, provider.as_ref()));
        if let Err(error) = started {
            shared.state.lock().failure = Some(format!("cannot start the token thread: {error}"));
        }
        TokenCache { shared }
    }

    /// A token that has not expired, waiting up to [`FIRST_TOKEN_WAIT`] for one; the error
    /// says why there is none (never a token).
    pub(crate) fn current(&self) -> Result<OAuthToken, String> {
        let deadline = std::time::Instant::now() + FIRST_TOKEN_WAIT;
        let mut state = self.shared.state.lock();
        loop {
            if let Some(token) = state
                .token
                .as_ref()
                .filter(|t| t.expires_at > SystemTime::now())
            {
                return Ok(token.clone());
            }
            if let Some(failure) = &state.failure {
                return Err(failure.clone());
            }
            if self
                .shared
                .changed
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                return Err("the OAUTHBEARER token provider has not answered yet".into());
            }
        }
    }
}

impl Drop for TokenCache {
    fn drop(&mut self) {
        self.shared.state.lock().stopped = true;
        self.shared.changed.notify_all();
    }
}

/// Fetches a token, keeps it, and sleeps until 80 % of its lifetime (or [`RETRY_AFTER`]
/// after a failure), until the cache is dropped.
fn refresh(shared: &Shared, provider: &dyn OAuthTokenProvider) {
    loop {
        let fetched = match std::panic::catch_unwind(AssertUnwindSafe(|| provider.token())) {
            Ok(Ok(token)) => checked(token),
            Ok(Err(error)) => Err(format!("the OAUTHBEARER token provider failed: {error}")),
            Err(_) => Err("the OAUTHBEARER token provider panicked".into()),
        };
        let wait = {
            let mut state = shared.state.lock();
            let wait = match fetched {
                Ok(token) => {
                    let left = token
                        .expires_at
                        .duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO);
                    state.token = Some(token);
                    state.failure = None;
                    (left * 4 / 5).max(Duration::from_secs(1))
                }
                Err(failure) => {
                    tracing::warn!(failure, "kafka OAUTHBEARER token not renewed; trying again");
                    state.failure = Some(failure);
                    RETRY_AFTER
                }
            };
            shared.changed.notify_all();
            wait
        };
        let deadline = std::time::Instant::now() + wait;
        let mut state = shared.state.lock();
        while !state.stopped {
            if shared.changed.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        if state.stopped {
            return;
        }
    }
}

/// `token` if librdkafka will take it: visible ASCII only (RFC 6750), a principal, a future
/// expiry. librdkafka's own refusal would quote the token in its error.
fn checked(token: OAuthToken) -> Result<OAuthToken, String> {
    if token.value.is_empty() || !token.value.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(
            "the OAUTHBEARER token is empty or holds characters outside visible ASCII".into(),
        );
    }
    if token.principal.is_empty() || token.principal.chars().any(char::is_whitespace) {
        return Err("the OAUTHBEARER principal is empty or holds whitespace".into());
    }
    if token.expires_at <= SystemTime::now() {
        return Err("the OAUTHBEARER token has already expired".into());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::TokenError;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Flaky(AtomicUsize);

    impl OAuthTokenProvider for Flaky {
        fn token(&self) -> Result<OAuthToken, TokenError> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => panic!("the provider's own bug"),
                _ => Ok(OAuthToken::new(
                    "t0ken",
                    "app",
                    SystemTime::now() + Duration::from_secs(3600),
                )),
            }
        }
    }

    #[test]
    fn a_panicking_provider_is_survived_and_bad_tokens_never_quoted() {
        let cache = TokenCache::start(Arc::new(Flaky(AtomicUsize::new(0))));
        // The first fetch panicked: said, without a token.
        let first = cache.current();
        assert_eq!(
            first.unwrap_err(),
            "the OAUTHBEARER token provider panicked"
        );
        // The next, RETRY_AFTER later, succeeds; polled until a deadline.
        let deadline = std::time::Instant::now() + RETRY_AFTER * 3;
        loop {
            match cache.current() {
                Ok(token) => break assert_eq!(token.value, "t0ken"),
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(error) => panic!("no token after a retry: {error}"),
            }
        }
        let bad = OAuthToken::new(
            "has space\u{feff}",
            "app",
            SystemTime::now() + Duration::from_secs(60),
        );
        let error = checked(bad).unwrap_err();
        assert!(!error.contains("has space"), "{error}");
    }
}
