//! A write timeout for servers that have none: a response body that notices when the server
//! stops taking it.
//!
//! A server polls a streaming body for its next chunk while it can write; when the client
//! stops reading, the socket fills, the server stops polling, and nothing in the body runs
//! again — so the body cannot time itself out. [`watched`] splits a body in two: the
//! [`Watched`] stream the server polls, which records each ask and each chunk handed over,
//! and a [`Watch`] the connection keeps, which sees from those records that the server has
//! held a chunk without coming back for more, and can [`cut`](Watch::cut) the body: the
//! stream it wraps (and what that holds, such as the client's subscription and its
//! connection slot) is dropped at once, whatever the server is doing.
//!
//! The socket itself belongs to the server, which is stuck writing to it: [`abort_unread_after`]
//! asks the kernel to abort a connection whose data the client leaves unread that long.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

struct Shared<S> {
    body: Mutex<Option<S>>,
    /// Times the server asked for a chunk.
    asks: AtomicU64,
    /// Whether the server holds a chunk and has not asked again since.
    owed: AtomicBool,
    /// Bytes handed to the server.
    taken: AtomicU64,
}

/// The body the server polls; ends when the stream it wraps ends or is [cut](Watch::cut).
pub struct Watched<S> {
    shared: Arc<Shared<S>>,
}

/// The connection's side of a [`Watched`] body.
pub struct Watch<S> {
    shared: Weak<Shared<S>>,
    /// The ask count when the server was last seen holding a chunk, and since when.
    held: Option<(u64, Instant)>,
}

/// `body`, watched: the stream for the server, and the [`Watch`] for the connection.
pub fn watched<S>(body: S) -> (Watched<S>, Watch<S>) {
    let shared = Arc::new(Shared {
        body: Mutex::new(Some(body)),
        asks: AtomicU64::new(0),
        owed: AtomicBool::new(false),
        taken: AtomicU64::new(0),
    });
    let watch = Watch {
        shared: Arc::downgrade(&shared),
        held: None,
    };
    (Watched { shared }, watch)
}

impl<S, E> futures_core::Stream for Watched<S>
where
    S: futures_core::Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let shared = &self.shared;
        shared.asks.fetch_add(1, Ordering::Relaxed);
        shared.owed.store(false, Ordering::Relaxed);
        let mut body = shared.body.lock();
        let Some(stream) = body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(stream).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                shared
                    .taken
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                shared.owed.store(true, Ordering::Relaxed);
            }
            Poll::Ready(_) => *body = None,
            Poll::Pending => {}
        }
        polled
    }
}

impl<S> Watch<S> {
    /// Bytes the server has taken so far; `None` once the body is gone.
    pub fn taken(&self) -> Option<u64> {
        Some(self.shared.upgrade()?.taken.load(Ordering::Relaxed))
    }

    /// Whether the server has held a chunk without asking for the next for at least
    /// `timeout`, as far as calls to this method can tell: called every `timeout / 2`, it
    /// says so between 1 and 1.5 × `timeout` after the stall began. A body that is gone is
    /// not stalled.
    pub fn stalled(&mut self, timeout: Duration) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let asks = shared.asks.load(Ordering::Relaxed);
        if !shared.owed.load(Ordering::Relaxed) {
            self.held = None;
            return false;
        }
        match self.held {
            Some((seen, since)) if seen == asks => since.elapsed() >= timeout,
            _ => {
                self.held = Some((asks, Instant::now()));
                false
            }
        }
    }

    /// Drops the wrapped stream now; the server then sees the body end if it asks again.
    pub fn cut(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        // Dropped outside the lock: the stream's drop may do real work.
        let body = shared.body.lock().take();
        drop(body);
    }

    /// Whether the body is gone (ended, cut, or dropped by the server).
    pub fn is_gone(&self) -> bool {
        self.shared
            .upgrade()
            .is_none_or(|shared| shared.body.lock().is_none())
    }

    /// Checks every `timeout / 2` and cuts the body once the server has stalled on it for
    /// `timeout`, counting it (`realtime_write_timeouts_total{transport}`); returns then, or
    /// when the body is gone. Spawn it beside the response.
    pub async fn enforce(mut self, timeout: Duration, transport: &'static str) {
        let mut every = tokio::time::interval(timeout / 2);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if self.is_gone() {
                return;
            }
            if self.stalled(timeout) {
                tracing::debug!(transport, "the server took nothing for the write timeout");
                metrics::counter!(realtime_core::metrics::WRITE_TIMEOUTS, "transport" => transport)
                    .increment(1);
                self.cut();
                return;
            }
        }
    }
}

/// Has the kernel abort `socket` when data sent on it stays unacknowledged — or, with a
/// client that stopped reading, unsent behind its zero window — for `timeout`
/// (`TCP_USER_TIMEOUT`; Linux and Android, elsewhere it does nothing). For servers that have
/// no write timeout (actix-web: call it from `HttpServer::on_connect`), so that a cut
/// connection's socket and buffers are freed too, not only its subscription.
pub fn abort_unread_after(
    socket: &tokio::net::TcpStream,
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket2::SockRef::from(socket).set_tcp_user_timeout(Some(timeout))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (socket, timeout);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A body of `n` one-byte chunks that counts its drop.
    struct Chunks(usize, Arc<AtomicUsize>);

    impl futures_core::Stream for Chunks {
        type Item = Result<Bytes, Infallible>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            if self.0 == 0 {
                return Poll::Pending;
            }
            self.0 -= 1;
            Poll::Ready(Some(Ok(Bytes::from_static(b"x"))))
        }
    }

    impl Drop for Chunks {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll<S: futures_core::Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
        let waker = std::task::Waker::noop();
        Pin::new(stream).poll_next(&mut Context::from_waker(waker))
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_keeps_a_chunk_is_cut_one_that_waits_for_data_is_not() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut body, watch) = watched(Chunks(2, drops.clone()));
        let timeout = Duration::from_secs(8);
        let enforce = tokio::spawn(watch.enforce(timeout, "test"));
        // Both chunks taken, then the body waits for data: the server is not stalled.
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert!(poll(&mut body).is_pending());
        tokio::time::sleep(timeout * 3).await;
        assert_eq!(
            drops.load(Ordering::Relaxed),
            0,
            "waiting for data is no stall"
        );
        assert!(!enforce.is_finished());
        // Data again, and the server keeps the chunk without asking for more.
        body.shared.body.lock().as_mut().unwrap().0 = 1;
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        tokio::time::sleep(timeout - Duration::from_secs(1)).await;
        assert_eq!(drops.load(Ordering::Relaxed), 0, "not before the timeout");
        tokio::time::sleep(timeout / 2 + Duration::from_secs(1)).await;
        enforce.await.unwrap();
        assert_eq!(
            drops.load(Ordering::Relaxed),
            1,
            "the stalled body is dropped"
        );
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_ends_with_its_body_and_counts_what_was_taken() {
        let drops = Arc::new(AtomicUsize::new(0));
        let (mut body, watch) = watched(Chunks(3, drops));
        assert!(matches!(poll(&mut body), Poll::Ready(Some(Ok(_)))));
        assert_eq!(watch.taken(), Some(1));
        let enforce = tokio::spawn(watch.enforce(Duration::from_secs(4), "test"));
        drop(body);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            enforce.is_finished(),
            "the watchdog left when the body went"
        );
    }
}
