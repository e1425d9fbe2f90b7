//! Readiness, and ending a manager together with the server in front of it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::queue::ClientShared;
use super::{CloseReason, Inner, Manager};
use crate::error::{Error, Result};

/// What [`Manager::ready`] found: each part `Ok`, or the error it gave.
#[derive(Debug)]
#[non_exhaustive]
pub struct Readiness {
    /// The store's [`check`](crate::Store::check).
    pub store: Result<()>,
    /// The bus's [`check`](crate::Bus::check).
    pub bus: Result<()>,
}

impl Readiness {
    /// Whether the manager is open and both the store and the bus can serve.
    pub fn is_ready(&self) -> bool {
        self.store.is_ok() && self.bus.is_ok()
    }
}

impl Manager {
    /// Whether this instance can serve: open, its store and its bus reachable — for a
    /// readiness endpoint (`/readyz`). Liveness needs nothing but the process answering.
    pub async fn ready(&self) -> Readiness {
        if self.is_closed() {
            return Readiness {
                store: Err(Error::Closed),
                bus: Err(Error::Closed),
            };
        }
        Readiness {
            store: self.inner.store.check().await,
            bus: self.inner.bus.check().await,
        }
    }

    /// A future for a server's graceful shutdown hook: waits for `signal`, then
    /// [closes](Manager::close) the manager, so that every stream has ended by the time the
    /// server starts waiting for its connections (a server that waits first never stops:
    /// event streams end only when the manager closes).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let manager = realtime_core::Manager::builder().build().unwrap();
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// // With axum: `axum::serve(listener, app).with_graceful_shutdown(on_signal).await?;`
    /// let on_signal = manager.close_on(async move { stopped.await.ok(); });
    /// stop.send(()).unwrap();
    /// on_signal.await;
    /// assert!(manager.is_closed());
    /// // WebSocket sessions run beside the server: let them send their close frames (1001).
    /// assert!(manager.drained_within(std::time::Duration::from_secs(5)).await);
    /// # }
    /// ```
    pub fn close_on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let manager = self.clone();
        async move {
            signal.await;
            tracing::info!("shutting down: ending every stream");
            if let Err(error) = manager.close().await {
                tracing::warn!(%error, "closing the store or bus failed");
            }
        }
    }

    /// Resolves once no client is connected: every stream has ended and its adapter has let
    /// its [`Client`](crate::Client) go (a WebSocket session after sending its close frame).
    pub async fn drained(&self) {
        loop {
            let notified = self.inner.drained.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.connection_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// [`Manager::drained`], waiting at most `grace`; returns whether every client left.
    pub async fn drained_within(&self, grace: Duration) -> bool {
        let drained = tokio::time::timeout(grace, self.drained()).await.is_ok();
        if !drained {
            tracing::warn!(
                clients = self.connection_count(),
                ?grace,
                "clients still connected after the grace period"
            );
        }
        drained
    }
}

impl Inner {
    /// Ends the stream of every client connected before `before` (every one: `None`) with
    /// `reason`; returns how many there were.
    pub(super) fn close_clients_before(
        &self,
        before: Option<SystemTime>,
        reason: CloseReason,
    ) -> usize {
        let clients: Vec<_> = self
            .clients
            .lock()
            .values()
            .flatten()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        close_before(clients, before, reason)
    }

    /// Ends every connected client's stream with `reason`; returns how many there were.
    pub(super) fn close_clients(&self, reason: CloseReason) -> usize {
        self.close_clients_before(None, reason)
    }
}

/// Ends the streams of `clients` connected before `before` (every one: `None`) with
/// `reason`; returns how many. Called with no lock held.
pub(super) fn close_before(
    clients: Vec<Arc<ClientShared>>,
    before: Option<SystemTime>,
    reason: CloseReason,
) -> usize {
    let mut closed = 0;
    for client in clients {
        if before.is_none_or(|before| client.connected_at < before) {
            client.close(reason);
            closed += 1;
        }
    }
    closed
}
