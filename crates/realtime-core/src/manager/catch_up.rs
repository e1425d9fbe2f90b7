//! Control requests an instance missed while its bus was cut off: read back from the store's
//! history of the control channel, or, where they cannot be, the clients they might have
//! named closed.

use std::time::{Duration, SystemTime};

use super::control::CONTROL_CHANNEL;
use super::{CloseReason, Inner};
use crate::error::{BackendError, BackendErrorKind, Result};
use crate::event::Event;
use crate::gap::GapReason;
use crate::metrics as m;
use crate::position::{Epoch, Position};

/// Instances' clocks differ: a request read back closes clients connected up to this long
/// after its timestamp (by this instance's clock).
const CLOCK_SKEW: Duration = Duration::from_secs(10);

/// Requests read per store read, and reads per catch-up at most.
const PAGE: usize = 1_000;
const MAX_PAGES: usize = 100;

/// What a catch-up found.
struct Missed {
    requests: Vec<Event>,
    /// Requests made before this were lost (trimmed from the store's history): any client
    /// connected before it may have been named.
    unknown_before: Option<SystemTime>,
    /// The last position read: the next catch-up starts after it.
    last: Position,
}

impl Inner {
    /// Carries out the control requests after `seen` that this instance did not hear, and
    /// moves `seen` past them. If the store cannot be read, closes every client connected
    /// now instead (it cannot tell which were named).
    pub(super) async fn catch_up(&self, seen: &mut Position, why: &str) {
        tracing::info!(why, after = %seen, "reading the control requests this instance may have missed");
        match self.read_missed(*seen).await {
            Ok(missed) => {
                metrics::counter!(m::CONTROL_CATCH_UPS, "outcome" => "read").increment(1);
                if let Some(before) = missed.unknown_before {
                    tracing::warn!(
                        "control requests were trimmed from the store before this instance read them; closing the clients they may have named"
                    );
                    self.close_unheard(before);
                }
                for request in &missed.requests {
                    self.apply_control(&request.data, Some(request.timestamp + CLOCK_SKEW));
                }
                *seen = missed.last;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the missed control requests; closing the clients they may have named");
                self.close_unheard(SystemTime::now());
            }
        }
    }

    /// Closes every client connected before `before`: requests that might have named them
    /// are lost. They reconnect (through the application's authorization) and resume.
    pub(super) fn close_unheard(&self, before: SystemTime) {
        metrics::counter!(m::CONTROL_CATCH_UPS, "outcome" => "clients_closed").increment(1);
        let clients: Vec<_> = self
            .clients
            .lock()
            .values()
            .flatten()
            .filter_map(std::sync::Weak::upgrade)
            .filter(|client| client.connected_at < before)
            .collect();
        tracing::warn!(
            closed = clients.len(),
            "closing the clients that missed control requests"
        );
        for client in clients {
            client.close(CloseReason::Disconnected);
        }
    }

    async fn read_missed(&self, seen: Position) -> Result<Missed> {
        let bound = self.config.subscribe_timeout;
        let mut missed = Missed {
            requests: Vec::new(),
            unknown_before: None,
            last: seen,
        };
        let mut after = seen;
        let mut lost_before_next = false;
        for _ in 0..MAX_PAGES {
            let read = tokio::time::timeout(bound, self.store.read(CONTROL_CHANNEL, after, PAGE))
                .await
                .map_err(|_| {
                    BackendError::new(
                        "store",
                        BackendErrorKind::Timeout,
                        format!("reading control requests took longer than {bound:?}"),
                    )
                })??;
            match read.gap {
                None | Some(GapReason::Limit) => {
                    if std::mem::take(&mut lost_before_next)
                        && let Some(oldest) = read.events.first()
                    {
                        missed.unknown_before = Some(oldest.timestamp + CLOCK_SKEW);
                    }
                    let done = read.gap.is_none() || read.events.is_empty();
                    if let Some(last) = read.events.last() {
                        after = last.id;
                        missed.last = last.id;
                    }
                    missed.requests.extend(read.events);
                    if done {
                        return Ok(missed);
                    }
                }
                Some(reason) => {
                    // Not readable from `after`: read what the store holds, from its oldest.
                    // Requests between are lost if the history was trimmed past them; a
                    // history that ended (expired unused, or lost with the store) and started
                    // again from 1 lost none this instance could have been sent since.
                    let trimmed = match reason {
                        GapReason::Trimmed => true,
                        _ => read.oldest > 1,
                    };
                    let start = Position::new(read.head.epoch, read.oldest.saturating_sub(1));
                    if read.head.epoch == Epoch::NONE || start == after {
                        missed.last = read.head;
                        return Ok(missed);
                    }
                    // Clients connected before the oldest request held may have been named
                    // (the next read starts with it; until then, any client).
                    if trimmed && missed.unknown_before.is_none() {
                        missed.unknown_before = Some(SystemTime::now());
                        lost_before_next = true;
                    }
                    after = start;
                    missed.last = start;
                }
            }
        }
        Ok(missed)
    }
}
