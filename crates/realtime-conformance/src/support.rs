//! Helpers shared by the suite functions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use realtime_core::{
    BusMessage, BusSubscription, Client, Event, History, Manager, ManagerConfig, Message, Origin,
};

use crate::Backend;

/// How long any single expected delivery may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(15);

/// A channel name no other test (or earlier run) uses.
pub(crate) fn channel(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{test}.{nanos:x}.{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Unwraps a backend call, failing the test with context.
pub(crate) fn ok<T>(result: realtime_core::Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

/// The next event on a bus subscription (skipping `Interrupted`), or a failure at the deadline.
pub(crate) async fn next_bus_event(sub: &mut BusSubscription, what: &str) -> Event {
    next_bus_message(sub, what).await.0
}

/// The next event on a bus subscription with its origin (skipping `Interrupted`), or a
/// failure at the deadline.
pub(crate) async fn next_bus_message(sub: &mut BusSubscription, what: &str) -> (Event, Origin) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, sub.recv()).await {
            Ok(Some(BusMessage::Event(event, origin))) => return (event, origin),
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{what}: bus subscription ended while waiting for an event"),
            Err(_) => panic!("{what}: no bus event within {DEADLINE:?}"),
        }
    }
}

/// The next message of a client, or a failure at the deadline.
pub(crate) async fn next_message(client: &mut Client, what: &str) -> Message {
    match tokio::time::timeout(DEADLINE, client.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!(
            "{what}: client closed ({:?}) while waiting",
            client.close_reason()
        ),
        Err(_) => panic!("{what}: nothing received within {DEADLINE:?}"),
    }
}

/// The next message, which must be an event.
pub(crate) async fn next_event(client: &mut Client, what: &str) -> Event {
    match next_message(client, what).await {
        Message::Event(event) => event.event().clone(),
        other => panic!("{what}: expected an event, got {other:?}"),
    }
}

/// Waits until `condition` holds, polling, or fails at the deadline.
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not true within {DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether `test` applies in the backend's history mode; says so when it is skipped (the
/// line `cargo xtask conformance` reports skips by).
#[allow(clippy::print_stdout)] // libtest captures it: the report `cargo xtask` reads.
pub(crate) fn runs_in(backend: &dyn Backend, history: History, test: &str) -> bool {
    let mode = backend.history();
    if mode != history {
        println!("conformance-skip: {test}: applies to {history:?} history, not {mode:?}");
    }
    mode == history
}

/// A manager on a new bus connection (a new instance) and the backend's store: the shared
/// one, or in per-instance mode a store of its own.
pub(crate) async fn instance(backend: &dyn Backend, mut config: ManagerConfig) -> Manager {
    let store = ok(backend.store().await, "store");
    let bus = ok(backend.bus().await, "bus");
    config.history = backend.history();
    ok(
        Manager::builder()
            .config(config)
            .store(store)
            .bus(bus)
            .build(),
        "manager build",
    )
}

/// Publishes `n` events (data `0`, `1`, …) through `manager` and returns them.
pub(crate) async fn publish_n(manager: &Manager, channel: &str, n: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let request = realtime_core::PublishRequest::new(channel, i.to_string());
        events.push(ok(manager.publish(request).await, "publish"));
    }
    events
}

/// The payload as text.
pub(crate) fn text(event: &Event) -> &str {
    std::str::from_utf8(&event.data).unwrap_or("<not utf-8>")
}

/// A store that runs a task once, right before its first `read`: it puts an event exactly in
/// the window between a client's live registration and its history read.
pub(crate) struct BeforeFirstRead {
    inner: std::sync::Arc<dyn realtime_core::Store>,
    hook: std::sync::Mutex<Option<futures_util::future::BoxFuture<'static, ()>>>,
}

impl BeforeFirstRead {
    pub(crate) fn new(
        inner: std::sync::Arc<dyn realtime_core::Store>,
        hook: futures_util::future::BoxFuture<'static, ()>,
    ) -> Self {
        BeforeFirstRead {
            inner,
            hook: std::sync::Mutex::new(Some(hook)),
        }
    }
}

#[async_trait::async_trait]
impl realtime_core::Store for BeforeFirstRead {
    async fn append(&self, event: realtime_core::NewEvent) -> realtime_core::Result<Event> {
        self.inner.append(event).await
    }

    async fn read(
        &self,
        channel: &str,
        after: realtime_core::Position,
        limit: usize,
    ) -> realtime_core::Result<realtime_core::ReadResult> {
        let hook = self.hook.lock().ok().and_then(|mut hook| hook.take());
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.read(channel, after, limit).await
    }

    async fn head(&self, channel: &str) -> realtime_core::Result<realtime_core::Position> {
        self.inner.head(channel).await
    }

    fn reach(&self) -> realtime_core::Reach {
        self.inner.reach()
    }

    async fn restart(&self, channel: &str) -> realtime_core::Result<()> {
        self.inner.restart(channel).await
    }

    async fn close(&self) -> realtime_core::Result<()> {
        self.inner.close().await
    }
}
