//! A round trip through the server: what this connection sent before it has been processed.
//!
//! The client's `flush` only writes its buffer to the socket (a dead server's socket takes
//! it too), and core NATS has no public ping. So the bus subscribes to a subject of its own
//! and sends itself a marker there: the server handles a connection's messages in order,
//! so when the marker comes back, everything sent before it was received and routed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::Client;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Markers in flight, by number.
type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// The start of every instance's marker subject.
pub(crate) const SUBJECT_PREFIX: &str = "_REALTIME_SYNC.";

/// The bus's marker subject and the markers awaited.
pub(crate) struct Barrier {
    subject: String,
    next: AtomicU64,
    waiters: Waiters,
    task: JoinHandle<()>,
}

impl Barrier {
    /// Subscribes to this instance's marker subject, `_REALTIME_SYNC.<instance>` (outside
    /// any channel's subject: channel subjects are `<prefix><one token>`).
    pub(crate) async fn start(
        client: &Client,
        instance: u64,
    ) -> Result<Barrier, async_nats::SubscribeError> {
        let subject = format!("{SUBJECT_PREFIX}{instance:016x}");
        let mut markers = client.subscribe(subject.clone()).await?;
        let waiters: Waiters = Arc::default();
        let arrived = waiters.clone();
        let task = tokio::spawn(async move {
            while let Some(marker) = markers.next().await {
                let number = std::str::from_utf8(&marker.payload)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok());
                if let Some(waiter) = number.and_then(|n| arrived.lock().remove(&n)) {
                    let _ = waiter.send(());
                }
            }
        });
        Ok(Barrier {
            subject,
            next: AtomicU64::new(0),
            waiters,
            task,
        })
    }

    /// Waits until the server has processed everything this connection sent before the
    /// call, within `bound`. `false` if it did not answer in time (or the connection is
    /// gone).
    pub(crate) async fn round_trip(&self, client: &Client, bound: Duration) -> bool {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let (done, arrived) = oneshot::channel();
        self.waiters.lock().insert(number, done);
        // Removes the waiter however this ends (a marker lost, or the caller gone).
        let _waiting = Waiting {
            waiters: &self.waiters,
            number,
        };
        let marker = async {
            client
                .publish(self.subject.clone(), number.to_string().into())
                .await
                .is_ok()
                && arrived.await.is_ok()
        };
        tokio::time::timeout(bound, marker).await.unwrap_or(false)
    }
}

/// A marker awaited; forgotten when dropped.
struct Waiting<'a> {
    waiters: &'a Waiters,
    number: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waiters.lock().remove(&self.number);
    }
}

impl Drop for Barrier {
    fn drop(&mut self) {
        self.task.abort();
    }
}
