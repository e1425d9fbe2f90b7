//! The reconnecting client: a background task per client, its updates read as a `Stream`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::mpsc;

use crate::config::{ClientBuilder, Transport};
use crate::error::Error;
use crate::http::HttpClient;
use crate::outlet::{Outlet, lock};
use crate::update::{ResumePoints, Update};

/// A client of one realtime server: it connects, reconnects after every cut with back-off
/// and resumes each channel after its newest id, so its stream carries every event once and
/// in order — or a [`Update::Gap`] where the server could not replay exactly.
///
/// Read it as a [`Stream`] of `Result<Update, Error>`: an `Err` is final (a refusal that
/// reconnecting cannot fix, e.g. 401); retryable failures arrive as
/// [`Update::Disconnected`] and the client goes on. Dropping the client ends its task.
#[derive(Debug)]
pub struct RealtimeClient {
    updates: mpsc::Receiver<Result<Update, Error>>,
    resume: Arc<Mutex<ResumePoints>>,
    task: tokio::task::JoinHandle<()>,
}

impl RealtimeClient {
    /// A client of the SSE endpoint at `url` (e.g. `http://host/events`), for one channel.
    pub fn sse(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url, Transport::Sse)
    }

    /// A client of the WebSocket endpoint at `url` (e.g. `ws://host/ws`).
    pub fn websocket(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url, Transport::WebSocket)
    }

    fn start(config: ClientBuilder, http: Option<HttpClient>) -> Self {
        let (sender, updates) = mpsc::channel(config.buffer);
        let resume = Arc::new(Mutex::new(ResumePoints::new(config.last_event_ids.clone())));
        let outlet = Outlet {
            sender,
            resume: resume.clone(),
            channels: config.channels.iter().cloned().collect(),
        };
        let task = tokio::spawn(run(config, http, outlet));
        RealtimeClient {
            updates,
            resume,
            task,
        }
    }

    /// The newest id seen on `channel` (or a gap's head): what to persist to resume after a
    /// restart ([`ClientBuilder::resume`]).
    pub fn last_event_id(&self, channel: &str) -> Option<String> {
        lock(&self.resume).get(channel).map(str::to_owned)
    }
}

impl ClientBuilder {
    /// Checks the settings and starts connecting (on the current Tokio runtime).
    ///
    /// # Panics
    /// Outside a Tokio runtime, as `tokio::spawn` does.
    pub fn build(mut self) -> Result<RealtimeClient, Error> {
        self.validate()?;
        if self.uses_tls() {
            self.tls = Some(self.tls_roots.client_config()?);
        }
        let http = match self.transport {
            Transport::Sse => Some(crate::http::client(&self)?),
            Transport::WebSocket => None,
        };
        Ok(RealtimeClient::start(self, http))
    }
}

impl Stream for RealtimeClient {
    type Item = Result<Update, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.updates.poll_recv(cx)
    }
}

impl Drop for RealtimeClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A connection up this long resets the back-off.
const STABLE: Duration = Duration::from_secs(10);
/// Protocol errors in a row, each before connected, that end the stream: the replay fails
/// the same way every time (an event this client cannot take), so reconnecting cannot help.
const MAX_PROTOCOL_FAILURES: u32 = 5;

/// Connects, reads, reconnects. `http` is the SSE transport's client; none for WebSocket.
async fn run(config: ClientBuilder, http: Option<HttpClient>, outlet: Outlet) {
    let mut attempt: u32 = 0;
    let mut protocol_failures = 0;
    loop {
        let started = tokio::time::Instant::now();
        let ended = match &http {
            Some(http) => crate::sse::connection(&config, http, &outlet).await,
            None => crate::ws::connection(&config, &outlet).await,
        };
        let Ok(error) = ended.error else {
            return;
        };
        // The back-off starts over only after a connection that held: a server that accepts
        // and drops at once is not hammered.
        if ended.connected && started.elapsed() >= STABLE {
            attempt = 0;
        }
        if matches!(error, Error::Protocol(_)) && !ended.connected {
            protocol_failures += 1;
        } else if ended.connected {
            protocol_failures = 0;
        }
        if !error.is_retryable() || protocol_failures >= MAX_PROTOCOL_FAILURES {
            let _ = outlet.sender.send(Err(error)).await;
            return;
        }
        let mut retry_in = delay(&config, attempt);
        attempt = attempt.saturating_add(1);
        if let Error::Refused {
            retry_after: Some(after),
            ..
        } = &error
        {
            retry_in = retry_in.max((*after).min(config.max_delay));
        }
        tracing::debug!(%error, ?retry_in, "realtime connection ended; reconnecting");
        if outlet
            .send(Update::Disconnected { error, retry_in })
            .await
            .is_err()
        {
            return;
        }
        // The back-off itself, not a synchronisation.
        tokio::time::sleep(retry_in).await;
    }
}

/// The delay before attempt `attempt` (0 first): random between half the bound and the
/// bound, which doubles per attempt from the first delay up to the largest.
fn delay(config: &ClientBuilder, attempt: u32) -> Duration {
    let bound = config
        .initial_delay
        .saturating_mul(1u32 << attempt.min(20))
        .min(config.max_delay);
    // A fresh hasher key per call: enough randomness to spread reconnects.
    let random = RandomState::new().hash_one(attempt) % 1_000;
    bound / 2 + bound.mul_f64(random as f64 / 2_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_largest_and_stay_within_half_the_bound_and_the_bound() {
        let config = RealtimeClient::websocket("ws://x")
            .reconnect_delays(Duration::from_millis(100), Duration::from_millis(700));
        for (attempt, bound) in [(0, 100), (1, 200), (2, 400), (3, 700), (40, 700)] {
            for _ in 0..50 {
                let d = delay(&config, attempt).as_millis();
                assert!(
                    (bound / 2..=bound).contains(&d),
                    "attempt {attempt}: {d} ms"
                );
            }
        }
    }
}
