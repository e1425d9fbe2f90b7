//! What the consumer reports: the watch (its client library's errors, an outage marking the
//! link down) and the reader that hands each message to the inbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rdkafka::client::OAuthToken;
use rdkafka::consumer::{ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Message};
use realtime_core::driver::Inbox;
use realtime_core::metrics as m;

use crate::hooks::Hooks;

/// What a consumer's client library reports, watched: a broker outage marks the link down.
/// Each generation of clients has its own watch; reports of an older generation (a consumer
/// being torn down) are ignored.
#[derive(Clone)]
pub(crate) struct Watch {
    state: Arc<WatchState>,
    generation: u64,
}

struct WatchState {
    hooks: Hooks,
    down: AtomicBool,
    /// The generation whose reports count.
    current: AtomicU64,
    inbox: Inbox,
}

impl Watch {
    pub(crate) fn new(inbox: Inbox, hooks: Hooks) -> Self {
        Watch {
            state: Arc::new(WatchState {
                hooks,
                down: AtomicBool::new(false),
                current: AtomicU64::new(0),
                inbox,
            }),
            generation: 0,
        }
    }

    /// From now on only the returned watch's reports count.
    pub(crate) fn next_generation(&self) -> Watch {
        let generation = self.state.current.fetch_add(1, Ordering::AcqRel) + 1;
        Watch {
            state: self.state.clone(),
            generation,
        }
    }

    fn is_current(&self) -> bool {
        self.state.current.load(Ordering::Acquire) == self.generation
    }

    /// Whether an outage was seen and not yet recovered from.
    pub(crate) fn is_down(&self) -> bool {
        self.state.down.load(Ordering::Acquire)
    }

    /// The outage is over (new clients read again).
    pub(crate) fn up(&self) {
        self.state.down.store(false, Ordering::Release);
    }

    /// What every client of the bus shares (errors, tokens).
    pub(crate) fn hooks(&self) -> &Hooks {
        &self.state.hooks
    }

    pub(crate) fn inbox(&self) -> &Inbox {
        &self.state.inbox
    }

    /// Frames may have been lost: the inbox hears it once per outage. Reports of an older
    /// generation are ignored.
    pub(crate) fn mark_down(&self, why: &str) {
        if self.is_current() {
            self.down(why);
        }
    }

    /// The link is down, whichever generation says so (the watchdog, about the current
    /// clients).
    pub(crate) fn down(&self, why: &str) {
        if !self.state.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                why,
                "kafka brokers unreachable; the bus repairs when they are back"
            );
            metrics::gauge!(m::BUS_CONNECTED, "backend" => "kafka").set(0.0);
            self.state.inbox.connection_lost();
        }
    }
}

/// A client whose last handle may be dropped anywhere, closed off the runtime's threads:
/// closing a librdkafka client waits for its threads (and a producer flushes).
pub(crate) struct OffThread<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> OffThread<T> {
    pub(crate) fn new(client: T) -> Self {
        OffThread(Some(client))
    }
}

impl<T: Send + 'static> std::ops::Deref for OffThread<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.0 {
            Some(client) => client,
            // Emptied only in `drop`.
            None => unreachable!("an OffThread is empty only while it is dropped"),
        }
    }
}

impl<T: Send + 'static> Drop for OffThread<T> {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(client))),
            Err(_) => drop(client),
        }
    }
}

/// A consumer, closed off the runtime's threads.
pub(crate) type Consumer = Arc<OffThread<StreamConsumer<Watch>>>;

impl ClientContext for Watch {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    /// A failed or dropped connection to a broker the consumer reads from may have lost what
    /// was in flight (and the broker may come back without it): an outage. The group
    /// coordinator's connection carries no events (the bus joins no group) and may idle out.
    fn error(&self, error: KafkaError, reason: &str) {
        self.state.hooks.record(&error, reason);
        let transport = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        );
        if transport && !reason.starts_with("GroupCoordinator") {
            self.mark_down(reason);
        } else {
            tracing::debug!(%error, reason, "kafka client error");
        }
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        crate::hooks::log(level, facility, message);
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.state.hooks.token()
    }
}

impl ConsumerContext for Watch {}

/// Serves what waits in the consumer's queue outside the reader: a token request, the
/// errors that say why the brokers could not be reached. Each poll serves one event; no
/// message can be taken while no partition is assigned, and one taken while the reader
/// runs is one it would have handed on, so this is only called before the reader starts
/// or after a failed request.
pub(crate) fn serve_events(consumer: &StreamConsumer<Watch>) {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..64 {
        let mut next = std::pin::pin!(consumer.recv());
        let _ = std::future::Future::poll(next.as_mut(), &mut context);
    }
}

/// Hands every message of the assigned partitions to the inbox, its key as the channel.
pub(crate) async fn read(consumer: Consumer, watch: Watch) {
    loop {
        match consumer.recv().await {
            Ok(message) => {
                let Some(Ok(channel)) = message.key().map(std::str::from_utf8) else {
                    continue;
                };
                watch
                    .inbox()
                    .frame(channel, message.payload().unwrap_or_default());
            }
            // The partition's log no longer holds the next offset (a broker that came back
            // empty, or retention): what was in between is gone.
            Err(error)
                if matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::AutoOffsetReset
                            | RDKafkaErrorCode::OffsetOutOfRange
                            | RDKafkaErrorCode::UnknownTopicOrPartition
                    )
                ) =>
            {
                watch.mark_down(&error.to_string());
            }
            Err(error) => tracing::debug!(%error, "kafka consumer error"),
        }
    }
}
